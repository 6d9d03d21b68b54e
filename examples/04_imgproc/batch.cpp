#include "batch.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include <gearbox/error.hpp>

#include "image.hpp"

namespace gearbox::imgproc {
namespace {

std::vector<std::byte> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw std::runtime_error("cannot read " + path.string());
  std::vector<std::byte> out(bytes.size());
  std::transform(bytes.begin(), bytes.end(), out.begin(), [](char c) { return static_cast<std::byte>(c); });
  return out;
}

void write_file(const std::filesystem::path& path, std::span<const std::byte> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path.string() + " (disk full?)");
}

// Each engine's way of turning one file's bytes into the output's bytes; exceptions are
// the file's failure.
template <class Process>
BatchResult run_each(Engine engine, const std::vector<std::filesystem::path>& inputs, const std::filesystem::path& out_dir,
                     Process start) {
  BatchResult result;
  result.engine = engine;
  std::filesystem::create_directories(out_dir);
  const auto begin = std::chrono::steady_clock::now();
  // start(bytes) returns a callable that yields the output bytes (at once, or by waiting
  // on a future), so every file is started before the first is awaited.
  std::vector<decltype(start(std::vector<std::byte>{}))> pending;
  result.files.resize(inputs.size());
  std::vector<bool> started(inputs.size(), false);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    result.files[i].input = inputs[i];
    try {
      pending.push_back(start(read_file(inputs[i])));
      started[i] = true;
    } catch (const std::exception& e) {
      pending.emplace_back();
      result.files[i].error = e.what();
    }
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!started[i]) continue;
    FileResult& file = result.files[i];
    try {
      const auto bytes = pending[i].get();
      write_file(out_dir / inputs[i].filename(), std::span<const std::byte>(bytes.data(), bytes.size()));
      file.ok = true;
      file.output_bytes = bytes.size();
    } catch (const std::exception& e) {
      file.error = e.what();
    }
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  return result;
}

// A value already computed, or the exception that computing it threw, behind get().
struct Ready {
  std::vector<std::byte> bytes;
  std::exception_ptr error;
  std::vector<std::byte> get() {
    if (error) std::rethrow_exception(error);
    return std::move(bytes);
  }
};

// A process-pool result: the new PNG in a SharedBuffer, copied out for writing.
struct FromWorker {
  Future<SharedBuffer> future;
  std::vector<std::byte> get() {
    const SharedBuffer out = future.get();
    return {out.bytes().begin(), out.bytes().end()};
  }
};

struct FromThread {
  Future<std::vector<std::byte>> future;
  std::vector<std::byte> get() { return future.get(); }
};

}  // namespace

std::vector<std::byte> process_png(std::span<const std::byte> png, const Pipeline& pipeline) {
  if (!(pipeline.scale > 0) || pipeline.blur_radius < 0) throw std::invalid_argument("a scale > 0 and a blur radius >= 0");
  Image image = decode_png(png);
  if (pipeline.grayscale) image = grayscale(image);
  if (pipeline.scale != 1.0) {
    const int width = std::max(1, static_cast<int>(std::lround(image.width * pipeline.scale)));
    const int height = std::max(1, static_cast<int>(std::lround(image.height * pipeline.scale)));
    image = resize(image, width, height);
  }
  image = blur(image, pipeline.blur_radius);
  return encode_png(image);
}

SharedBuffer process_png_shared(SharedBuffer png, Pipeline pipeline) {
  const std::vector<std::byte> out = process_png(png.bytes(), pipeline);
  return SharedBuffer::copy_of(out);
}

GEARBOX_REMOTE(process_png_shared);

const char* to_string(Engine engine) noexcept {
  switch (engine) {
  case Engine::sequential: return "sequential";
  case Engine::threads: return "threads";
  case Engine::processes: return "processes";
  }
  return "?";
}

std::size_t BatchResult::failed() const noexcept {
  return static_cast<std::size_t>(std::count_if(files.begin(), files.end(), [](const FileResult& f) { return !f.ok; }));
}

BatchResult run_batch(Engine engine, const std::vector<std::filesystem::path>& inputs, const std::filesystem::path& out_dir,
                      const Pipeline& pipeline, Pools pools) {
  switch (engine) {
  case Engine::sequential:
    return run_each(engine, inputs, out_dir, [&](std::vector<std::byte> png) {
      Ready ready;
      try {
        ready.bytes = process_png(png, pipeline);
      } catch (...) {
        ready.error = std::current_exception();
      }
      return ready;
    });
  case Engine::threads:
    if (!pools.threads) throw std::invalid_argument("run_batch: Engine::threads needs a ThreadPool");
    return run_each(engine, inputs, out_dir, [&](std::vector<std::byte> png) {
      return FromThread{pools.threads->submit([png = std::move(png), pipeline] { return process_png(png, pipeline); })};
    });
  case Engine::processes:
    if (!pools.processes) throw std::invalid_argument("run_batch: Engine::processes needs a ProcessPool");
    return run_each(engine, inputs, out_dir, [&](std::vector<std::byte> png) {
      return FromWorker{pools.processes->submit(remote<process_png_shared>, SharedBuffer::copy_of(png), pipeline)};
    });
  }
  throw std::invalid_argument("run_batch: unknown engine");
}

std::vector<std::filesystem::path> png_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.is_regular_file() && entry.path().extension() == ".png") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace gearbox::imgproc
