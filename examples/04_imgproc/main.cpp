// gearbox-imgproc: a batch of PNG images through grayscale, resize and blur, sequentially,
// on a ThreadPool and on a ProcessPool, side by side. See README.md.
//
//   gearbox-imgproc generate images --count 16 --size 800x600 --corrupt 1
//   gearbox-imgproc process images out --gray --scale 0.5 --blur 2
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include <gearbox/gearbox.hpp>

#include "batch.hpp"
#include "image.hpp"

namespace gb = gearbox;
namespace ip = gearbox::imgproc;

namespace {

int generate(const std::filesystem::path& dir, int count, const std::string& size, int corrupt) {
  int width = 0;
  int height = 0;
  if (std::sscanf(size.c_str(), "%dx%d", &width, &height) != 2 || width < 1 || height < 1 || width > 20000 ||
      height > 20000) {
    std::fprintf(stderr, "gearbox-imgproc: --size is WIDTHxHEIGHT, e.g. 800x600 (at most 20000x20000)\n");
    return 2;
  }
  std::filesystem::create_directories(dir);
  for (int i = 0; i < count + corrupt; ++i) {
    const ip::Image image = ip::test_pattern(width, height, 3 + i % 2, static_cast<unsigned>(i));
    std::vector<std::byte> png = ip::encode_png(image);
    char name[32];
    std::snprintf(name, sizeof name, i < count ? "image-%03d.png" : "corrupt-%03d.png", i);
    if (i >= count) png.resize(png.size() / 2);  // cut in half: a truncated file
    std::ofstream out(dir / name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(png.data()), static_cast<std::streamsize>(png.size()));
    if (!out) {
      std::fprintf(stderr, "gearbox-imgproc: cannot write %s\n", (dir / name).c_str());
      return 1;
    }
  }
  std::printf("gearbox-imgproc: wrote %d images of %dx%d and %d truncated one(s) to %s\n", count, width, height, corrupt,
              dir.c_str());
  return 0;
}

bool same_files(const std::filesystem::path& a, const std::filesystem::path& b) {
  std::ifstream x(a, std::ios::binary);
  std::ifstream y(b, std::ios::binary);
  return x && y && std::equal(std::istreambuf_iterator<char>(x), std::istreambuf_iterator<char>(),
                              std::istreambuf_iterator<char>(y), std::istreambuf_iterator<char>());
}

int process(const std::filesystem::path& in, const std::filesystem::path& out, const std::string& engine_name,
            const ip::Pipeline& pipeline, std::size_t workers) {
  if (!std::filesystem::is_directory(in)) {
    std::fprintf(stderr, "gearbox-imgproc: %s is not a directory\n", in.c_str());
    return 2;
  }
  const std::vector<std::filesystem::path> inputs = ip::png_files(in);
  if (inputs.empty()) {
    std::fprintf(stderr, "gearbox-imgproc: no .png files in %s (make some: gearbox-imgproc generate %s)\n", in.c_str(),
                 in.c_str());
    return 2;
  }
  std::vector<ip::Engine> engines;
  for (const ip::Engine e : {ip::Engine::sequential, ip::Engine::threads, ip::Engine::processes})
    if (engine_name == "all" || engine_name == ip::to_string(e)) engines.push_back(e);
  const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  gb::ThreadPool threads{{.workers = workers ? workers : cores}};
  gb::ProcessPool processes{{.workers = workers ? workers : cores}};

  std::printf("gearbox-imgproc: %zu files from %s, %zu workers per pool\n\n", inputs.size(), in.c_str(),
              workers ? workers : cores);
  std::printf("  %-12s %9s %9s %7s %8s\n", "engine", "wall", "per file", "failed", "speedup");
  std::vector<ip::BatchResult> results;
  for (const ip::Engine engine : engines) {
    results.push_back(ip::run_batch(engine, inputs, out / ip::to_string(engine), pipeline, {&threads, &processes}));
    const ip::BatchResult& r = results.back();
    const double base = results.front().engine == ip::Engine::sequential ? results.front().seconds : 0;
    std::printf("  %-12s %8.2fs %7.1fms %7zu %7s\n", ip::to_string(engine), r.seconds, r.seconds * 1e3 / inputs.size(),
                r.failed(), base > 0 ? (std::to_string(base / r.seconds).substr(0, 4) + "x").c_str() : "-");
  }
  std::printf("\n");
  for (const ip::FileResult& f : results.front().files)
    if (!f.ok) std::printf("  failed (in every engine alike): %s: %s\n", f.input.filename().c_str(), f.error.c_str());

  // Every engine must have produced the same bytes for the same file.
  std::size_t differing = 0;
  for (std::size_t e = 1; e < results.size(); ++e)
    for (std::size_t i = 0; i < inputs.size(); ++i)
      if (results[e].files[i].ok != results[0].files[i].ok ||
          (results[0].files[i].ok && !same_files(out / ip::to_string(results[0].engine) / inputs[i].filename(),
                                                 out / ip::to_string(results[e].engine) / inputs[i].filename())))
        ++differing;
  if (results.size() > 1)
    std::printf("  outputs: %s\n", differing == 0 ? "identical across engines" : (std::to_string(differing) + " differ!").c_str());
  std::printf("  written to %s/<engine>/\n", out.c_str());
  return differing == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  gb::init(argc, argv);  // a worker process never returns from here
  CLI::App app{"gearbox-imgproc: PNG batch processing, sequential vs threads vs processes"};
  app.require_subcommand(1);

  CLI::App* gen = app.add_subcommand("generate", "write test images (and truncated ones) to a directory");
  std::filesystem::path gen_dir;
  int count = 16;
  std::string size = "800x600";
  int corrupt = 0;
  gen->add_option("dir", gen_dir, "where to write them")->required();
  gen->add_option("--count", count, "how many good images (default 16)")->check(CLI::Range(1, 10000));
  gen->add_option("--size", size, "WIDTHxHEIGHT (default 800x600)");
  gen->add_option("--corrupt", corrupt, "how many truncated files to add (default 0)")->check(CLI::Range(0, 100));

  CLI::App* proc = app.add_subcommand("process", "run every .png of IN through the pipeline into OUT/<engine>/");
  std::filesystem::path in;
  std::filesystem::path out;
  std::string engine = "all";
  ip::Pipeline pipeline;
  std::size_t workers = 0;
  proc->add_option("in", in, "directory of .png files")->required();
  proc->add_option("out", out, "output directory")->required();
  proc->add_option("--engine", engine, "all, sequential, threads or processes (default all)")
      ->check(CLI::IsMember({"all", "sequential", "threads", "processes"}));
  proc->add_flag("--gray", pipeline.grayscale, "convert to grayscale");
  proc->add_option("--scale", pipeline.scale, "resize by this factor (default 1)")->check(CLI::Range(0.01, 16.0));
  proc->add_option("--blur", pipeline.blur_radius, "box blur radius (default 0)")->check(CLI::Range(0, 100));
  proc->add_option("--workers", workers, "threads and processes per pool (default: one per core)");

  CLI11_PARSE(app, argc, argv);
  try {
    if (*gen) return generate(gen_dir, count, size, corrupt);
    return process(in, out, engine, pipeline, workers);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gearbox-imgproc: %s\n", e.what());
    return 1;
  }
}
