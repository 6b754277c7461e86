// gpukit/io/jpeg.hpp — 8-bit grayscale and RGB images to and from JPEG files
// (libjpeg-turbo, or any libjpeg with in-memory sources).
//
//   gpukit::io::write_jpeg("cat.jpg", gpukit::make_host_span(rgb), 160, 120, gpukit::io::pixel_format::rgb8, 90);
//   gpukit::io::image img = gpukit::io::read_jpeg("cat.jpg");
//   gpukit::io::image same = gpukit::io::decode_jpeg(gpukit::make_host_span(file_bytes), "cat.jpg");
//
// Decoding is strict: anything libjpeg reports about the data, warnings included (a
// truncated file, "corrupt JPEG data", a missing end marker), is a jpeg_file_error naming
// the file and libjpeg's reason, instead of an image silently padded with grey. Files
// declaring more than max_image_pixels are rejected from their header. libjpeg's errors
// never print, exit or leak: they long-jump back to the frame that called libjpeg, which
// holds no C++ object, and the libjpeg state is released by a guard one frame up.
//
// Host-only header: compiles with a plain C++17 compiler; link libjpeg (the gpukit CMake
// target does).
#pragma once

#include "gpukit/core/error.hpp"
#include "gpukit/core/span.hpp"
#include "gpukit/io/image.hpp"

#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>  // jpeglib.h needs FILE and size_t declared first
#include <cstring>
#include <utility>
#include <string>
#include <vector>

#include <jpeglib.h>

namespace gpukit::io {

/// A JPEG file could not be written, read or decoded; what() names the file and the reason.
class jpeg_file_error : public image_file_error {
 public:
  using image_file_error::image_file_error;
};

namespace detail {

/// libjpeg's error manager plus where to jump and what it said. `mgr` comes first: libjpeg
/// hands callbacks a pointer to it, which is also a pointer to the whole struct.
struct jpeg_error_state {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

inline void jpeg_error_exit(j_common_ptr cinfo) {
  auto* state = reinterpret_cast<jpeg_error_state*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, state->message);
  std::longjmp(state->jump, 1);
}

/// Level −1 is a warning about the data (corrupt or truncated): fatal, see the header
/// comment. Levels ≥ 0 are trace messages: dropped instead of printed.
inline void jpeg_emit_message(j_common_ptr cinfo, int level) {
  if (level < 0) jpeg_error_exit(cinfo);
}

inline void jpeg_output_nothing(j_common_ptr) {}

/// Fails the libjpeg call in progress with our own reason.
[[noreturn]] inline void jpeg_fail_with(j_common_ptr cinfo, const char* reason) {
  auto* state = reinterpret_cast<jpeg_error_state*>(cinfo->err);
  std::snprintf(state->message, sizeof state->message, "%s", reason);
  std::longjmp(state->jump, 1);
}

inline void install_error_state(jpeg_error_state& state) {
  jpeg_std_error(&state.mgr);
  state.mgr.error_exit = jpeg_error_exit;
  state.mgr.emit_message = jpeg_emit_message;
  state.mgr.output_message = jpeg_output_nothing;
  state.message[0] = '\0';
}

/// More scans than any real progressive JPEG uses (they use about 10); a file with more is
/// a CPU bomb: each scan re-decodes the whole image (TurboJPEG's scan limit is the same idea).
inline constexpr int max_jpeg_scans = 500;

/// Owns a decompressor; jpeg_destroy_decompress is safe after an error at any stage.
struct jpeg_decoder {
  jpeg_error_state error;
  jpeg_decompress_struct cinfo;
  jpeg_progress_mgr progress;
  jpeg_decoder() {
    std::memset(&cinfo, 0, sizeof cinfo);
    std::memset(&progress, 0, sizeof progress);
    progress.progress_monitor = limit_scans;
    install_error_state(error);
    cinfo.err = &error.mgr;
  }
  ~jpeg_decoder() { jpeg_destroy_decompress(&cinfo); }
  static void limit_scans(j_common_ptr c) {
    if (reinterpret_cast<j_decompress_ptr>(c)->input_scan_number > max_jpeg_scans)
      jpeg_fail_with(c, "more than 500 scans (a progressive-scan bomb?)");
  }
  jpeg_decoder(const jpeg_decoder&) = delete;
  jpeg_decoder& operator=(const jpeg_decoder&) = delete;
};

// The two functions below call setjmp and hold only trivially destructible locals, so a
// long jump out of libjpeg back into them skips no destructor (the C++ rule for setjmp).
// They return false on failure, with libjpeg's reason in d.error.message.

/// Reads the header, chooses the output colour space (gray, RGB, or CMYK, converted by the
/// caller as libjpeg cannot convert it to RGB) and computes the output size.
inline bool jpeg_read_header_raw(jpeg_decoder& d, const std::uint8_t* data, std::size_t size) {
  if (setjmp(d.error.jump)) return false;
  jpeg_create_decompress(&d.cinfo);
  d.cinfo.progress = &d.progress;
  // libjpeg 8 declares the buffer non-const; it is only read.
  jpeg_mem_src(&d.cinfo, const_cast<unsigned char*>(data), static_cast<unsigned long>(size));
  jpeg_read_header(&d.cinfo, TRUE);
  switch (d.cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE: d.cinfo.out_color_space = JCS_GRAYSCALE; break;
    case JCS_CMYK:
    case JCS_YCCK: d.cinfo.out_color_space = JCS_CMYK; break;
    default: d.cinfo.out_color_space = JCS_RGB; break;
  }
  jpeg_calc_output_dimensions(&d.cinfo);
  return true;
}

/// Decodes every row into `out` (output_width · output_height · output_components bytes,
/// as jpeg_read_header_raw computed them).
inline bool jpeg_read_pixels_raw(jpeg_decoder& d, std::uint8_t* out) {
  if (setjmp(d.error.jump)) return false;
  jpeg_start_decompress(&d.cinfo);
  const std::size_t row = static_cast<std::size_t>(d.cinfo.output_width) * d.cinfo.output_components;
  while (d.cinfo.output_scanline < d.cinfo.output_height) {
    JSAMPROW rows[1] = {out + d.cinfo.output_scanline * row};
    jpeg_read_scanlines(&d.cinfo, rows, 1);
  }
  jpeg_finish_decompress(&d.cinfo);
  return true;
}

/// CMYK to RGB in place: R = (255 − C)(255 − K)/255. Adobe's files (nearly every CMYK JPEG,
/// marked by an Adobe segment) store the values inverted, 255 − C, so R = C'·K'/255 there.
inline void cmyk_to_rgb(std::vector<std::uint8_t>& px, std::size_t pixels, bool inverted) {
  const unsigned flip = inverted ? 0 : 255;
  for (std::size_t i = 0; i < pixels; ++i) {
    const unsigned k = px[4 * i + 3] ^ flip;
    for (int c = 0; c < 3; ++c) px[3 * i + c] = static_cast<std::uint8_t>(((px[4 * i + c] ^ flip) * k + 127) / 255);
  }
  px.resize(3 * pixels);
}

/// A compressor writing into a std::vector, which it grows as libjpeg fills it.
struct jpeg_encoder {
  jpeg_error_state error;
  jpeg_compress_struct cinfo;
  jpeg_destination_mgr dest;
  std::vector<std::uint8_t> out;
  jpeg_encoder() {
    std::memset(&cinfo, 0, sizeof cinfo);
    std::memset(&dest, 0, sizeof dest);
    install_error_state(error);
    cinfo.err = &error.mgr;
  }
  ~jpeg_encoder() { jpeg_destroy_compress(&cinfo); }
  jpeg_encoder(const jpeg_encoder&) = delete;
  jpeg_encoder& operator=(const jpeg_encoder&) = delete;

  /// Grows `out` to `size` bytes; false instead of an exception, which must not cross libjpeg.
  bool grow(std::size_t size) noexcept {
    try {
      out.resize(size);
      return true;
    } catch (...) {
      return false;
    }
  }
  static jpeg_encoder& of(j_compress_ptr c) { return *static_cast<jpeg_encoder*>(c->client_data); }
  static void init(j_compress_ptr c) {
    jpeg_encoder& e = of(c);
    if (!e.grow(std::size_t{1} << 16)) jpeg_fail_with(reinterpret_cast<j_common_ptr>(c), "out of memory");
    e.dest.next_output_byte = e.out.data();
    e.dest.free_in_buffer = e.out.size();
  }
  static boolean empty(j_compress_ptr c) {  // libjpeg's contract: the whole buffer is full
    jpeg_encoder& e = of(c);
    const std::size_t used = e.out.size();
    if (!e.grow(2 * used)) jpeg_fail_with(reinterpret_cast<j_common_ptr>(c), "out of memory");
    e.dest.next_output_byte = e.out.data() + used;
    e.dest.free_in_buffer = e.out.size() - used;
    return TRUE;
  }
  static void term(j_compress_ptr c) {
    jpeg_encoder& e = of(c);
    e.out.resize(e.out.size() - e.dest.free_in_buffer);  // shrinking never allocates
  }
};

inline bool jpeg_encode_raw(jpeg_encoder& e, const std::uint8_t* pixels, std::size_t width, std::size_t height,
                            int components, int quality) {
  if (setjmp(e.error.jump)) return false;
  jpeg_create_compress(&e.cinfo);
  e.cinfo.client_data = &e;
  e.dest.init_destination = jpeg_encoder::init;
  e.dest.empty_output_buffer = jpeg_encoder::empty;
  e.dest.term_destination = jpeg_encoder::term;
  e.cinfo.dest = &e.dest;
  e.cinfo.image_width = static_cast<JDIMENSION>(width);
  e.cinfo.image_height = static_cast<JDIMENSION>(height);
  e.cinfo.input_components = components;
  e.cinfo.in_color_space = components == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&e.cinfo);
  jpeg_set_quality(&e.cinfo, quality, TRUE);
  jpeg_start_compress(&e.cinfo, TRUE);
  const std::size_t row = width * static_cast<std::size_t>(components);
  while (e.cinfo.next_scanline < e.cinfo.image_height) {
    JSAMPROW rows[1] = {const_cast<std::uint8_t*>(pixels) + e.cinfo.next_scanline * row};  // only read
    jpeg_write_scanlines(&e.cinfo, rows, 1);
  }
  jpeg_finish_compress(&e.cinfo);
  return true;
}

}  // namespace detail

/// Decodes the encoded bytes of a JPEG file: gray8 for grayscale files, rgb8 for colour
/// ones (YCbCr, RGB, and CMYK/YCCK converted). `name` (e.g. the file the bytes came
/// from) only labels errors; `bytes` is not kept after the call. Throws jpeg_file_error
/// for anything wrong with the data (see the header comment) or an image over
/// max_image_pixels.
inline image decode_jpeg(host_span<const std::uint8_t> bytes, const std::string& name) {
  const char* where = "gpukit::io::decode_jpeg";
  auto fail = [&](const std::string& reason) {
    return jpeg_file_error(name, std::string(where) + ": cannot decode '" + name + "': " + reason);
  };
  if (bytes.empty()) throw fail("no bytes");
  detail::jpeg_decoder d;
  if (!detail::jpeg_read_header_raw(d, bytes.data(), bytes.size())) throw fail(d.error.message);
  const std::size_t w = d.cinfo.output_width, h = d.cinfo.output_height;
  if (!detail::pixel_count_ok(w, h))
    throw fail("it declares " + std::to_string(w) + " x " + std::to_string(h) + " pixels, more than the limit of " +
               std::to_string(max_image_pixels));
  const bool cmyk = d.cinfo.out_color_space == JCS_CMYK;
  image out;
  out.width = w;
  out.height = h;
  out.format = d.cinfo.out_color_space == JCS_GRAYSCALE ? pixel_format::gray8 : pixel_format::rgb8;
  out.pixels.resize(w * h * static_cast<std::size_t>(d.cinfo.output_components));
  if (!detail::jpeg_read_pixels_raw(d, out.pixels.data())) throw fail(d.error.message);
  if (cmyk) detail::cmyk_to_rgb(out.pixels, w * h, d.cinfo.saw_Adobe_marker);
  return out;
}

/// Reads and decodes the JPEG file at `path`, as decode_jpeg. A file that cannot be opened
/// is a jpeg_file_error too.
inline image read_jpeg(const std::string& path) {
  gpukit::detail::require(!path.empty(), "gpukit::io::read_jpeg", "argument 'path' is empty");
  std::vector<std::uint8_t> bytes;
  try {
    bytes = detail::read_file_bytes(path, "gpukit::io::read_jpeg");
  } catch (const image_file_error& e) {
    throw jpeg_file_error(path, e.what());
  }
  return decode_jpeg(make_host_span(bytes), path);
}

namespace detail {

inline std::vector<std::uint8_t> encode_jpeg_checked(host_span<const std::uint8_t> pixels, std::size_t width,
                                                     std::size_t height, pixel_format format, int quality,
                                                     const char* where, const std::string& name) {
  using gpukit::detail::require;
  require(format == pixel_format::gray8 || format == pixel_format::rgb8, where,
          "argument 'format' = " + std::to_string(static_cast<int>(format)) + " is not gray8 or rgb8");
  require(width >= 1 && width <= JPEG_MAX_DIMENSION, where,
          "argument 'width' = " + std::to_string(width) + " is outside [1, 65500]");
  require(height >= 1 && height <= JPEG_MAX_DIMENSION, where,
          "argument 'height' = " + std::to_string(height) + " is outside [1, 65500]");
  require(quality >= 1 && quality <= 100, where,
          "argument 'quality' = " + std::to_string(quality) + " is outside [1, 100]");
  require_pixels(pixels.size(), width, height, format, where);
  jpeg_encoder e;
  if (!jpeg_encode_raw(e, pixels.data(), width, height, static_cast<int>(channels(format)), quality))
    throw jpeg_file_error(name, std::string(where) + ": cannot encode '" + name + "': " + e.error.message);
  return std::move(e.out);
}

}  // namespace detail

/// Encodes `pixels` (width · height · channels(format) bytes) as a baseline JPEG with
/// 4:2:0 chroma subsampling (libjpeg's defaults) at `quality` in [1, 100]. width and
/// height in [1, 65500] (JPEG's limit). Bad arguments: std::invalid_argument.
inline std::vector<std::uint8_t> encode_jpeg(host_span<const std::uint8_t> pixels, std::size_t width,
                                             std::size_t height, pixel_format format, int quality = 90) {
  return detail::encode_jpeg_checked(pixels, width, height, format, quality, "gpukit::io::encode_jpeg", "memory");
}

/// Writes `pixels` as a JPEG file at `path` (replacing it); arguments as encode_jpeg,
/// checked before the file is touched. File system failures: jpeg_file_error.
inline void write_jpeg(const std::string& path, host_span<const std::uint8_t> pixels, std::size_t width,
                       std::size_t height, pixel_format format, int quality = 90) {
  const char* where = "gpukit::io::write_jpeg";
  gpukit::detail::require(!path.empty(), where, "argument 'path' is empty");
  const auto bytes = detail::encode_jpeg_checked(pixels, width, height, format, quality, where, path);
  try {
    detail::write_file_bytes(path, bytes.data(), bytes.size(), where);
  } catch (const image_file_error& e) {
    throw jpeg_file_error(path, e.what());
  }
}

}  // namespace gpukit::io
