// examples/mandelbrot — a command-line renderer. With no arguments it renders the seed
// article's scene (1536 × 1024, [-2, 1] × [-1, 1], 20 iterations, double) and writes the
// article's image as a grayscale PNG.
//
//   mandelbrot [--width W] [--height H] [--bounds MIN_X,MAX_X,MIN_Y,MAX_Y]
//              [--center RE,IM] [--scale PIXEL_SIZE] [--iters N] [--precision STRATEGY]
//              [--aa N] [--julia RE,IM] [--palette gray|classic|fire|ocean] [--out FILE.png]
//              [--repeats R] [--cpu]
//
// --center takes decimal numbers to any number of digits and --scale is the pixel size, any
// size down to 1e-100000: a zoom of the Mandelbrot set, which picks its arithmetic from the
// pixel size (float, double, perturbation; --precision automatic|float|double|dd|
// perturbation|perturbation-extended forces one), e.g.
//   mandelbrot --center -0.743643887037158704752191506114774,0.131825904205311970493132056385139
//              --scale 1e-20 --iters 20000 --palette classic
// Deep zooms need gpukit built with MPFR (gpukit::deep_zoom); without it, and for Julia
// sets and --bounds, the centre is kept as a double-double and --precision is one of
// float|double|dd (double by default). It prints the time of the escape counts (median
// of R runs after a warm-up; for perturbation also the plan's: reference orbit and
// tables), Mpixel/s, and Giter/s counted as the iterations the article's loop performs;
// without a GPU (or with --cpu) it runs the CPU fallback and says so.
#include "gpukit/fractal/mandelbrot.cuh"
#include "gpukit/io/png.hpp"
#if defined(GPUKIT_HAVE_MPFR)
#include "gpukit/fractal/deep_zoom.hpp"
#endif

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace fr = gpukit::fractal;

namespace {

struct options {
  std::size_t width = 1536, height = 1024;
  bool have_bounds = false, have_center = false, have_scale = false;
  double bounds[4] = {-2.0, 1.0, -1.0, 1.0};
  std::string center[2] = {"-0.5", "0"};  ///< as given: any number of digits
  std::string scale;                       ///< as given: any pixel size
  std::uint32_t iters = 20;
  std::string prec;  ///< empty: automatic for zooms, double otherwise
  std::uint32_t aa = 1;
  bool julia = false;
  fr::dd_real julia_c[2] = {fr::dd_from(-0.8), fr::dd_from(0.156)};
  fr::palette pal = fr::palette::gray;
  std::string out = "mandelbrot.png";
  int repeats = 5;
  bool cpu = false;
};

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "mandelbrot: %s\n"
               "usage: mandelbrot [--width W] [--height H] [--bounds MIN_X,MAX_X,MIN_Y,MAX_Y] [--center RE,IM]\n"
               "                  [--scale PIXEL_SIZE] [--iters N] [--precision STRATEGY] [--aa N]\n"
               "                  [--julia RE,IM] [--palette gray|classic|fire|ocean] [--out FILE.png]\n"
               "                  [--repeats R] [--cpu]\n",
               problem.c_str());
  std::exit(2);
}

std::vector<std::string> split(const std::string& text, std::size_t parts, const char* flag) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = text.find(',', start);
    out.push_back(text.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (out.size() != parts) usage(std::string(flag) + " expects " + std::to_string(parts) + " comma-separated numbers");
  return out;
}

double number(const std::string& text, const char* flag) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0') usage(std::string(flag) + " expects a number, got '" + text + "'");
  return v;
}

unsigned long long whole(const std::string& text, const char* flag) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || text[0] == '-') usage(std::string(flag) + " expects a whole number, got '" + text + "'");
  return v;
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--cpu") {
      o.cpu = true;
      continue;
    }
    if (i + 1 >= argc) usage("missing value after " + flag);
    const std::string value = argv[++i];
    try {
      if (flag == "--width") {
        o.width = whole(value, "--width");
      } else if (flag == "--height") {
        o.height = whole(value, "--height");
      } else if (flag == "--bounds") {
        const auto p = split(value, 4, "--bounds");
        for (int k = 0; k < 4; ++k) o.bounds[k] = number(p[k], "--bounds");
        o.have_bounds = true;
      } else if (flag == "--center") {
        const auto p = split(value, 2, "--center");
        o.center[0] = p[0];
        o.center[1] = p[1];
        o.have_center = true;
      } else if (flag == "--scale") {
        o.scale = value;
        o.have_scale = true;
      } else if (flag == "--iters") {
        o.iters = static_cast<std::uint32_t>(std::min<unsigned long long>(whole(value, "--iters"), 0xffffffffull));
      } else if (flag == "--precision") {
        o.prec = value;
      } else if (flag == "--aa") {
        o.aa = static_cast<std::uint32_t>(std::min<unsigned long long>(whole(value, "--aa"), 0xffffffffull));
      } else if (flag == "--julia") {
        const auto p = split(value, 2, "--julia");
        o.julia_c[0] = fr::parse_dd(p[0]);
        o.julia_c[1] = fr::parse_dd(p[1]);
        o.julia = true;
      } else if (flag == "--palette") {
        o.pal = fr::parse_palette(value);
      } else if (flag == "--out") {
        o.out = value;
      } else if (flag == "--repeats") {
        o.repeats = static_cast<int>(std::max<unsigned long long>(1, std::min<unsigned long long>(whole(value, "--repeats"), 1000)));
      } else {
        usage("unknown option " + flag);
      }
    } catch (const std::invalid_argument& e) {
      usage(e.what());
    }
  }
  if (o.have_bounds && (o.have_center || o.have_scale)) usage("--bounds cannot be combined with --center or --scale");
  if (o.iters < 1 || o.iters > fr::max_iters_limit) usage("--iters must be in [1, 2^31 - 1]");
  if (o.aa < 1 || o.aa > fr::max_supersampling) usage("--aa must be in [1, " + std::to_string(fr::max_supersampling) + "]");
  return o;
}

/// Whether the view is a zoom that deep_zoom.hpp renders (centre and scale as given).
bool is_zoom(const options& o) { return (o.have_center || o.have_scale) && !o.julia; }

fr::scene make_scene(const options& o) {
  fr::scene s;
  if (o.have_center || o.have_scale) {
    const double scale = o.have_scale ? number(o.scale, "--scale") : 3.0 / static_cast<double>(o.width);
    s.view = fr::centered_view(fr::parse_dd(o.center[0]), fr::parse_dd(o.center[1]), scale, o.width, o.height);
  } else if (o.julia && !o.have_bounds) {
    s.view = fr::bounds_view(-1.5, 1.5, -1.0, 1.0, o.width, o.height);
  } else {
    s.view = fr::bounds_view(o.bounds[0], o.bounds[1], o.bounds[2], o.bounds[3], o.width, o.height);
  }
  s.max_iters = o.iters;
  s.prec = o.prec.empty() ? fr::precision::f64 : fr::parse_precision(o.prec);
  s.julia = o.julia;
  s.julia_re = o.julia_c[0];
  s.julia_im = o.julia_c[1];
  return s;
}

std::size_t pixels_of(const fr::scene& s) { return s.view.width * s.view.height; }
const char* arithmetic_of(const fr::scene& s) { return fr::to_string(s.prec); }

#if defined(GPUKIT_HAVE_MPFR)
fr::deep_scene make_deep_scene(const options& o) {
  fr::deep_scene s;
  s.center_re = o.center[0];
  s.center_im = o.center[1];
  if (o.have_scale) {
    s.pixel_size = o.scale;
  } else {
    char text[32];
    std::snprintf(text, sizeof text, "%.17g", 3.0 / static_cast<double>(o.width));
    s.pixel_size = text;
  }
  s.width = o.width;
  s.height = o.height;
  s.max_iters = o.iters;
  s.strategy = o.prec.empty() ? fr::zoom_strategy::automatic : fr::parse_zoom_strategy(o.prec);
  return s;
}

std::size_t pixels_of(const fr::deep_plan& p) {
  return static_cast<std::size_t>(p.reference.width) * p.reference.height;
}
const char* arithmetic_of(const fr::deep_plan& p) { return fr::to_string(p.strategy); }
#endif

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Median time of `repeats` calls of `call` after one warm-up, timed on the executor.
template <class Exec, class Call>
double time_ms(const Exec& exec, int repeats, Call&& call) {
  call();
  exec.synchronize();
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    auto timer = gpukit::make_timer(exec);
    timer.start();
    call();
    timer.stop();
    ms.push_back(timer.elapsed_ms());
  }
  return median(ms);
}

/// The gray palette without supersampling writes the article's image straight from the
/// counts; everything else goes through the coloured, supersampled render.
bool needs_colour(const options& o) { return o.pal != fr::palette::gray || o.aa != 1; }

struct rendered {
  std::vector<std::uint32_t> counts, work;
  std::vector<fr::rgb8> rgb;
  double count_ms = 0, render_ms = 0;
};

/// Counts, work and (when asked) colours of `s` — a scene or a deep plan, which the
/// fractal front ends take alike.
template <class Scene>
rendered render_on(const gpukit::cpu_executor& exec, const Scene& s, const options& o) {
  const std::size_t n = pixels_of(s);
  rendered r;
  r.counts.resize(n);
  r.work.resize(n);
  r.rgb.resize(n);
  r.count_ms = time_ms(exec, o.repeats, [&] { fr::escape_time(exec, s, gpukit::make_host_span(r.counts)); });
  fr::count_iterations(exec, s, gpukit::make_host_span(r.work));
  if (needs_colour(o))
    r.render_ms = time_ms(exec, 1, [&] { fr::render_rgb(exec, s, o.pal, o.aa, gpukit::make_host_span(r.rgb)); });
  return r;
}

template <class Scene>
rendered render_on(const gpukit::cuda_executor& exec, const Scene& s, const options& o) {
  const std::size_t n = pixels_of(s);
  gpukit::device_buffer<std::uint32_t> counts(n, exec.stream()), work(n, exec.stream());
  gpukit::device_buffer<fr::rgb8> rgb(n, exec.stream());
  rendered r;
  r.count_ms = time_ms(exec, o.repeats, [&] { fr::escape_time(exec, s, counts.span()); });
  fr::count_iterations(exec, s, work.span());
  if (needs_colour(o)) r.render_ms = time_ms(exec, 1, [&] { fr::render_rgb(exec, s, o.pal, o.aa, rgb.span()); });
  r.counts = counts.to_host(exec.stream());
  r.work = work.to_host(exec.stream());
  r.rgb = rgb.to_host(exec.stream());
  return r;
}

/// Renders on the GPU when there is one (and --cpu is not given), else on the CPU.
template <class Scene>
rendered render(const Scene& s, const options& o, bool gpu) {
  if (gpu) {
    const auto info = gpukit::device_properties(gpukit::current_device());
    std::printf("GPU: %s (%d SMs)\n", info.name.c_str(), info.sm_count);
    gpukit::stream st;
    return render_on(gpukit::cuda_executor(st.view()), s, o);
  }
  const gpukit::cpu_executor cpu;
  std::printf("%s: running the CPU fallback (%d threads)\n", o.cpu ? "--cpu" : "No usable CUDA device", cpu.threads());
  return render_on(cpu, s, o);
}

}  // namespace

int main(int argc, char** argv) try {
  const options o = parse(argc, argv);
  const bool gpu = !o.cpu && gpukit::is_cuda_available();
  rendered r;
  std::size_t width = 0, height = 0;
  std::uint32_t max_iters = 0;
  std::string arithmetic;
  if (is_zoom(o)) {
#if defined(GPUKIT_HAVE_MPFR)
    gpukit::cpu_timer plan_timer;
    plan_timer.start();
    const fr::deep_plan plan = fr::plan_deep_zoom(make_deep_scene(o));
    plan_timer.stop();
    if (plan.strategy == fr::zoom_strategy::perturbation || plan.strategy == fr::zoom_strategy::perturbation_extended)
      std::printf("plan: reference orbit of %u iterations at %ld bits and its tables, %.3f ms\n", plan.reference.length,
                  static_cast<long>(plan.precision_bits), plan_timer.elapsed_ms());
    r = render(plan, o, gpu);
    width = plan.reference.width;
    height = plan.reference.height;
    max_iters = plan.reference.max_iters;
    arithmetic = arithmetic_of(plan);
#else
    const fr::scene s = make_scene(o);  // double-double centres: pixel sizes down to ~1e-30
    r = render(s, o, gpu);
    width = s.view.width;
    height = s.view.height;
    max_iters = s.max_iters;
    arithmetic = arithmetic_of(s);
#endif
  } else {
    const fr::scene s = make_scene(o);
    r = render(s, o, gpu);
    width = s.view.width;
    height = s.view.height;
    max_iters = s.max_iters;
    arithmetic = arithmetic_of(s);
  }
  const std::size_t n = width * height;

  // Iterations the article's loop performs: count + 1 for a point that escapes, max_iters otherwise.
  double article_iters = 0, performed = 0;
  for (std::size_t i = 0; i < n; ++i) {
    article_iters += std::min<double>(static_cast<double>(r.counts[i]) + 1.0, max_iters);
    performed += r.work[i];
  }
  std::printf("%s %zu x %zu, %u iterations, %s%s\n", o.julia ? "Julia set" : "Mandelbrot set", width, height,
              max_iters, arithmetic.c_str(), gpu ? "" : " (CPU)");
  std::printf("escape counts: %.3f ms (median of %d), %.4g Mpixel/s, %.4g Giter/s (%.0f iterations of the "
              "article's loop; %.0f steps performed after work-saving)\n",
              r.count_ms, o.repeats, n / r.count_ms / 1e3, article_iters / r.count_ms / 1e6, article_iters, performed);
  if (needs_colour(o))
    std::printf("coloured render (%s, %ux%u samples per pixel): %.3f ms\n", fr::to_string(o.pal), o.aa, o.aa,
                r.render_ms);

  if (!needs_colour(o)) {
    // The article's image: the count as brightness, max_iters white.
    std::vector<std::uint8_t> gray(n);
    for (std::size_t i = 0; i < n; ++i)
      gray[i] = static_cast<std::uint8_t>((255.0 * r.counts[i]) / max_iters + 0.5);
    gpukit::io::write_png(o.out, gpukit::make_host_span(std::as_const(gray)), width, height,
                          gpukit::io::pixel_format::gray8);
  } else {
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(r.rgb.data());
    gpukit::io::write_png(o.out, gpukit::host_span<const std::uint8_t>(bytes, 3 * n), width, height,
                          gpukit::io::pixel_format::rgb8);
  }
  std::printf("wrote %s\n", o.out.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "mandelbrot: %s\n", e.what());
  return 1;
}
