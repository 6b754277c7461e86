// Bad input to the io layer: arguments (std::invalid_argument naming them) and bad files or
// bytes (the format's error naming the file), each one row of docs/BAD_INPUT_MATRIX.md
// (tests/support/bad_input.hpp). After each refusal the outputs are checked untouched and
// no file was created. Fuzzing (fuzz/) covers arbitrary bytes; these are the named cases.
#include "gpukit/io/dataset.hpp"
#include "gpukit/io/image_file.hpp"
#include "gpukit/io/jpeg.hpp"
#include "gpukit/io/png.hpp"
#include "gpukit/io/resize.hpp"
#include "gpukit/io/safetensors.hpp"
#include "gpukit/io/synthetic.hpp"
#include "io/io_support.hpp"
#include "support/bad_input.hpp"

#include <cstdint>
#include <string>
#include <vector>

using namespace gpukit::io;
using gpukit::make_host_span;
using gpukit_test::bad_input;
using invalid = std::invalid_argument;

namespace {

bool exists(const io_test::fs::path& p) {
  std::error_code ec;
  return io_test::fs::exists(p, ec);
}

}  // namespace

TEST_CASE("image encoders refuse bad arguments and write nothing", "[io][bad_input]") {
  io_test::temp_dir dir("bad_encode");
  const std::string file = (dir.path() / "out.png").string();
  const std::vector<std::uint8_t> twelve(12, 7);
  const auto px = make_host_span(twelve);
  bad_input<invalid>("gpukit::io::write_png", "'path'", "empty", [&] { write_png("", px, 2, 2, pixel_format::rgb8); });
  bad_input<invalid>("gpukit::io::write_png", "'format'", "not gray8 or rgb8",
                     [&] { write_png(file, px, 2, 2, static_cast<pixel_format>(2)); }, {"2"});
  bad_input<invalid>("gpukit::io::write_png", "'width'", "0", [&] { write_png(file, px, 0, 2, pixel_format::gray8); }, {"0"});
  bad_input<invalid>("gpukit::io::write_png", "'height'", "0", [&] { write_png(file, px, 2, 0, pixel_format::gray8); }, {"0"});
  bad_input<invalid>("gpukit::io::write_png", "'pixels'", "fewer bytes than width x height x channels",
                     [&] { write_png(file, px, 3, 3, pixel_format::rgb8); }, {"12", "27"});
  bad_input<png_file_error>("gpukit::io::write_png", "/nonexistent-dir/out.png", "a folder that does not exist",
                            [&] { write_png("/nonexistent-dir/out.png", px, 2, 2, pixel_format::rgb8); }, {"write_png"});
  CHECK_FALSE(exists(file));

  const std::string jpg = (dir.path() / "out.jpg").string();
  bad_input<invalid>("gpukit::io::encode_jpeg", "'quality'", "0", [&] { (void)encode_jpeg(px, 2, 2, pixel_format::rgb8, 0); },
                     {"0"});
  bad_input<invalid>("gpukit::io::encode_jpeg", "'quality'", "above 100",
                     [&] { (void)encode_jpeg(px, 2, 2, pixel_format::rgb8, 101); }, {"101"});
  bad_input<invalid>("gpukit::io::encode_jpeg", "'width'", "0", [&] { (void)encode_jpeg(px, 0, 2, pixel_format::gray8); }, {"0"});
  bad_input<invalid>("gpukit::io::encode_jpeg", "'width'", "above JPEG's 65500",
                     [&] { (void)encode_jpeg(px, 65501, 1, pixel_format::gray8); }, {"65501"});
  bad_input<invalid>("gpukit::io::encode_jpeg", "'height'", "0", [&] { (void)encode_jpeg(px, 2, 0, pixel_format::gray8); }, {"0"});
  bad_input<invalid>("gpukit::io::encode_jpeg", "'format'", "not gray8 or rgb8",
                     [&] { (void)encode_jpeg(px, 2, 2, static_cast<pixel_format>(4)); }, {"4"});
  bad_input<invalid>("gpukit::io::encode_jpeg", "'pixels'", "fewer bytes than width x height x channels",
                     [&] { (void)encode_jpeg(px, 3, 3, pixel_format::rgb8); }, {"12", "27"});
  bad_input<invalid>("gpukit::io::write_jpeg", "'path'", "empty", [&] { write_jpeg("", px, 2, 2, pixel_format::rgb8); });
  bad_input<invalid>("gpukit::io::write_jpeg", "'quality'", "0, checked before the file is touched",
                     [&] { write_jpeg(jpg, px, 2, 2, pixel_format::rgb8, 0); }, {"0"});
  bad_input<jpeg_file_error>("gpukit::io::write_jpeg", "/nonexistent-dir/out.jpg", "a folder that does not exist",
                             [&] { write_jpeg("/nonexistent-dir/out.jpg", px, 2, 2, pixel_format::rgb8); }, {"write_jpeg"});
  CHECK_FALSE(exists(jpg));
}

TEST_CASE("image decoders refuse bad files and bytes, naming them", "[io][bad_input]") {
  io_test::temp_dir dir("bad_decode");
  const std::vector<std::uint8_t> none, text{'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e'};
  const std::vector<std::uint8_t> rgb(4 * 4 * 3, 90);
  std::vector<std::uint8_t> png_bytes;
  {
    const std::string file = (dir.path() / "good.png").string();
    write_png(file, make_host_span(rgb), 4, 4, pixel_format::rgb8);
    png_bytes = io_test::read_bytes(file);
  }
  const auto jpeg_bytes = encode_jpeg(make_host_span(rgb), 4, 4, pixel_format::rgb8);
  const std::vector<std::uint8_t> png_half(png_bytes.begin(), png_bytes.begin() + png_bytes.size() / 2);
  const std::vector<std::uint8_t> jpeg_half(jpeg_bytes.begin(), jpeg_bytes.begin() + jpeg_bytes.size() / 2);
  std::vector<std::uint8_t> png_long_chunk = png_bytes;
  png_long_chunk[8] = 0x7f;  // IHDR's length: about 2 GiB in a file of ~80 bytes
  // IHDR whole, then only the header of an ancillary chunk declaring about 1.9 GB: libpng
  // would allocate that much before finding its data missing.
  std::vector<std::uint8_t> png_cut_header(png_bytes.begin(), png_bytes.begin() + 33);
  const std::uint8_t cut_header[] = {0x73, 0x50, 0x42, 0x60, 's', 'P', 'L', 'T', 0x82};
  png_cut_header.insert(png_cut_header.end(), std::begin(cut_header), std::end(cut_header));

  bad_input<png_file_error>("gpukit::io::decode_png", "'mem.png'", "no bytes", [&] { (void)decode_png(make_host_span(none), "mem.png"); },
                            {"no bytes"});
  bad_input<png_file_error>("gpukit::io::decode_png", "'mem.png'", "not a PNG", [&] { (void)decode_png(make_host_span(text), "mem.png"); });
  bad_input<png_file_error>("gpukit::io::decode_png", "'mem.png'", "cut in half",
                            [&] { (void)decode_png(make_host_span(png_half), "mem.png"); });
  bad_input<png_file_error>("gpukit::io::decode_png", "'mem.png'", "a chunk longer than the bytes left",
                            [&] { (void)decode_png(make_host_span(png_long_chunk), "mem.png"); }, {"declares", "more than the"});
  bad_input<png_file_error>("gpukit::io::decode_png", "'mem.png'", "a chunk header without its data or CRC",
                            [&] { (void)decode_png(make_host_span(png_cut_header), "mem.png"); },
                            {"at byte 33 declares 1934639712 bytes, more than the 0 left"});
  bad_input<jpeg_file_error>("gpukit::io::decode_jpeg", "'mem.jpg'", "no bytes", [&] { (void)decode_jpeg(make_host_span(none), "mem.jpg"); },
                             {"no bytes"});
  bad_input<jpeg_file_error>("gpukit::io::decode_jpeg", "'mem.jpg'", "not a JPEG",
                             [&] { (void)decode_jpeg(make_host_span(text), "mem.jpg"); });
  bad_input<jpeg_file_error>("gpukit::io::decode_jpeg", "'mem.jpg'", "cut in half",
                             [&] { (void)decode_jpeg(make_host_span(jpeg_half), "mem.jpg"); });
  bad_input<image_file_error>("gpukit::io::decode_image", "'mem.bin'", "neither JPEG nor PNG",
                              [&] { (void)decode_image(make_host_span(text), "mem.bin"); }, {"12 bytes"});

  const std::string missing = (dir.path() / "missing.png").string();
  bad_input<invalid>("gpukit::io::read_png", "'path'", "empty", [] { (void)read_png(""); });
  bad_input<png_file_error>("gpukit::io::read_png", "missing.png", "a file that does not exist", [&] { (void)read_png(missing); });
  bad_input<invalid>("gpukit::io::read_jpeg", "'path'", "empty", [] { (void)read_jpeg(""); });
  bad_input<jpeg_file_error>("gpukit::io::read_jpeg", "missing.png", "a file that does not exist", [&] { (void)read_jpeg(missing); });
  bad_input<invalid>("gpukit::io::read_image", "'path'", "empty", [] { (void)read_image(""); });
  bad_input<image_file_error>("gpukit::io::read_image", "missing.png", "a file that does not exist",
                              [&] { (void)read_image(missing); });
}

TEST_CASE("resizing refuses bad images and outputs, writing nothing", "[io][bad_input]") {
  image src;
  src.width = 4;
  src.height = 2;
  src.format = pixel_format::rgb8;
  src.pixels.assign(4 * 2 * 3, 100);
  std::vector<std::uint8_t> out(3 * 3 * 3, 7), short_out(26, 7);
  image bad_format = src;
  bad_format.format = static_cast<pixel_format>(2);
  image no_pixels = src;
  no_pixels.width = 0;
  image short_pixels = src;
  short_pixels.pixels.pop_back();
  bad_input<invalid>("gpukit::io::resize_bilinear", "'src'", "a format other than gray8 or rgb8",
                     [&] { resize_bilinear(bad_format, 3, 3, make_host_span(out)); }, {"format 2"});
  bad_input<invalid>("gpukit::io::resize_bilinear", "'src'", "0 pixels wide", [&] { resize_bilinear(no_pixels, 3, 3, make_host_span(out)); },
                     {"0 x 2"});
  bad_input<invalid>("gpukit::io::resize_bilinear", "'src'", "fewer pixel bytes than its size",
                     [&] { resize_bilinear(short_pixels, 3, 3, make_host_span(out)); }, {"23 bytes"});
  bad_input<invalid>("gpukit::io::resize_bilinear", "'width'", "0", [&] { resize_bilinear(src, 0, 3, make_host_span(out)); },
                     {"'height'", "0 x 3"});
  bad_input<invalid>("gpukit::io::resize_bilinear", "'width'", "0, returning a new image", [&] { (void)resize_bilinear(src, 0, 3); },
                     {"0 x 3"});
  bad_input<invalid>("gpukit::io::resize_bilinear", "'out'", "fewer bytes than width x height x channels",
                     [&] { resize_bilinear(src, 3, 3, make_host_span(short_out)); }, {"26", "27"});
  image shared = src;  // out is the last pixel of the source itself
  bad_input<invalid>("gpukit::io::resize_bilinear", "'out'", "overlaps 'src'",
                     [&] { resize_bilinear(shared, 1, 1, gpukit::host_span<std::uint8_t>(shared.pixels.data() + 21, 3)); });
  for (auto v : out) REQUIRE(v == 7);
  for (auto v : short_out) REQUIRE(v == 7);
  for (auto v : shared.pixels) REQUIRE(v == 100);
}

TEST_CASE("dataset reading refuses bad folders and arguments", "[io][bad_input]") {
  io_test::temp_dir dir("bad_dataset");
  const auto root = dir.path();
  bad_input<dataset_error>("gpukit::io::list_image_folder", "missing", "a folder that does not exist",
                           [&] { (void)list_image_folder((root / "missing").string()); }, {"not a folder"});
  io_test::fs::create_directories(root / "empty_root");
  bad_input<dataset_error>("gpukit::io::list_image_folder", "empty_root", "no class subfolder",
                           [&] { (void)list_image_folder((root / "empty_root").string()); }, {"no class subfolder"});
  io_test::fs::create_directories(root / "one" / "cats");
  io_test::fs::create_directories(root / "one" / "dogs");
  const std::vector<std::uint8_t> rgb(2 * 2 * 3, 50);
  write_png((root / "one" / "cats" / "a.png").string(), make_host_span(rgb), 2, 2, pixel_format::rgb8);
  io_test::write_bytes((root / "one" / "dogs" / "notes.txt").string(), {'x'});
  bad_input<dataset_error>("gpukit::io::list_image_folder", "dogs", "a class folder with no image",
                           [&] { (void)list_image_folder((root / "one").string()); }, {"holds no"});
  io_test::write_bytes((root / "one" / "dogs" / "b.jpg").string(), {'n', 'o', 't'});
  const image_folder folder = list_image_folder((root / "one").string());
  REQUIRE(folder.files.size() == 2);
  bad_input<image_file_error>("gpukit::io::image_cache::load", "b.jpg", "a file that does not decode",
                             [&] { (void)image_cache::load(gpukit::cpu_executor(1), folder, 4, 4); });
  image_folder mismatched = folder;
  mismatched.labels.pop_back();
  bad_input<invalid>("gpukit::io::image_cache::load", "'folder'", "fewer labels than files",
                     [&] { (void)image_cache::load(mismatched, 4, 4); }, {"2 files but 1 labels"});
  image_folder bad_label = folder;
  bad_label.labels[0] = 5;
  bad_input<invalid>("gpukit::io::image_cache::load", "'folder'", "a label that is not a class",
                     [&] { (void)image_cache::load(bad_label, 4, 4); }, {"label 5"});
  bad_input<invalid>("gpukit::io::image_cache::load", "'width'", "0", [&] { (void)image_cache::load(folder, 0, 4); }, {"0 x 4"});

  bad_input<invalid>("gpukit::io::image_cache", "'width'", "0",
                     [] { image_cache c({"a"}, 0, 2, std::vector<std::uint8_t>{}, std::vector<float>{}); }, {"0 x 2"});
  bad_input<invalid>("gpukit::io::image_cache", "'pixels'", "not a whole number of images",
                     [] { image_cache c({"a"}, 2, 2, std::vector<std::uint8_t>(13), std::vector<float>{0.0f}); }, {"13 bytes"});
  bad_input<invalid>("gpukit::io::image_cache", "'labels'", "a class index out of range",
                     [] { image_cache c({"a", "b"}, 1, 1, std::vector<std::uint8_t>(3), std::vector<float>{2.0f}); }, {"2.0"});
  bad_input<invalid>("gpukit::io::image_cache", "'labels'", "not a whole number",
                     [] { image_cache c({"a", "b"}, 1, 1, std::vector<std::uint8_t>(3), std::vector<float>{0.5f}); }, {"0.5"});
}

TEST_CASE("safetensors refuses bad tensors, files and bytes", "[io][bad_input]") {
  io_test::temp_dir dir("bad_safetensors");
  const std::vector<float> six(6, 1.0f), five(5, 1.0f);
  using T = safetensors_tensor;
  bad_input<invalid>("gpukit::io::serialize_safetensors", "'tensors'[0]", "an empty name",
                     [&] { (void)serialize_safetensors({T{"", {6}, make_host_span(six)}}); }, {"empty name"});
  bad_input<invalid>("gpukit::io::serialize_safetensors", "'tensors'[1]", "a repeated name",
                     [&] { (void)serialize_safetensors({T{"w", {6}, make_host_span(six)}, T{"w", {5}, make_host_span(five)}}); },
                     {"repeats"});
  bad_input<invalid>("gpukit::io::serialize_safetensors", "'tensors'[0]", "the reserved name __metadata__",
                     [&] { (void)serialize_safetensors({T{"__metadata__", {6}, make_host_span(six)}}); }, {"reserved"});
  bad_input<invalid>("gpukit::io::serialize_safetensors", "'tensors'[0]", "a shape that does not match the values",
                     [&] { (void)serialize_safetensors({T{"w", {2, 2}, make_host_span(six)}}); }, {"[2,2]"});
  const std::string file = (dir.path() / "m.safetensors").string();
  bad_input<invalid>("gpukit::io::write_safetensors", "'path'", "empty",
                     [&] { write_safetensors("", {T{"w", {6}, make_host_span(six)}}); });
  bad_input<invalid>("gpukit::io::write_safetensors", "'tensors'[0]", "a shape that does not match, before the file is touched",
                     [&] { write_safetensors(file, {T{"w", {7}, make_host_span(six)}}); }, {"[7]"});
  CHECK_FALSE(exists(file));
  bad_input<safetensors_error>("gpukit::io::read_safetensors", "m.safetensors", "a file that does not exist",
                               [&] { (void)read_safetensors(file); });

  const std::vector<std::uint8_t> seven(7, 0);
  std::vector<std::uint8_t> huge_header(16, 0);
  huge_header[7] = 0x10;  // a header length of 2^60
  bad_input<safetensors_error>("gpukit::io::parse_safetensors", "mem", "fewer than 8 bytes",
                               [&] { (void)parse_safetensors(make_host_span(seven), "mem"); }, {"7 bytes"});
  bad_input<safetensors_error>("gpukit::io::parse_safetensors", "mem", "a header length past the limit",
                               [&] { (void)parse_safetensors(make_host_span(huge_header), "mem"); }, {"exceeds the limit"});
  const auto bytes = serialize_safetensors({T{"w", {2, 3}, make_host_span(six)}});
  std::vector<std::uint8_t> cut(bytes.begin(), bytes.end() - 4);
  bad_input<safetensors_error>("gpukit::io::parse_safetensors", "mem", "the data section cut short",
                               [&] { (void)parse_safetensors(make_host_span(cut), "mem"); });
  const safetensors_file f = parse_safetensors(make_host_span(bytes), "mem");
  bad_input<safetensors_error>("gpukit::io::safetensors_file::at", "'b'", "a name the file does not hold",
                               [&] { (void)f.at("b"); }, {"no tensor"});
  bad_input<safetensors_error>("gpukit::io::safetensors_file::f32", "'b'", "a name the file does not hold",
                               [&] { (void)f.f32("b"); }, {"no tensor"});
}

TEST_CASE("synthetic data refuses bad arguments and writes nothing", "[io][bad_input]") {
  bad_input<invalid>("gpukit::io::make_synthetic_image", "'label'", "not 0 or 1", [] { (void)make_synthetic_image(2, 1, 0); }, {"2"});
  bad_input<invalid>("gpukit::io::make_synthetic_image", "'min_size'", "above 'max_size'",
                     [] { (void)make_synthetic_image(0, 1, 0, 64, 32); }, {"'max_size' = 32"});
  bad_input<invalid>("gpukit::io::make_synthetic_image", "'max_size'", "above 4096",
                     [] { (void)make_synthetic_image(0, 1, 0, 48, 5000); }, {"5000"});
  bad_input<invalid>("gpukit::io::make_synthetic_cache", "'width'", "0", [] { (void)make_synthetic_cache(2, 0, 8, 1); },
                     {"'height'", "0 x 8"});
  io_test::temp_dir dir("bad_synthetic");
  const std::string root = (dir.path() / "data").string();
  synthetic_options o;
  o.train_per_class = 1;
  o.test_per_class = 1;
  o.jpeg_quality = 0;
  bad_input<invalid>("gpukit::io::write_synthetic_dataset", "'root'", "empty", [&] { (void)write_synthetic_dataset("", o); });
  bad_input<invalid>("gpukit::io::write_synthetic_dataset", "'jpeg_quality'", "0", [&] { (void)write_synthetic_dataset(root, o); },
                     {"0"});
  CHECK_FALSE(exists(root));
}
