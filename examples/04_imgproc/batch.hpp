// A batch of PNG files through one pipeline (grayscale, resize, blur) on one engine:
// sequentially, on a ThreadPool, or on a ProcessPool with SharedBuffers. The point of the
// example: CPU work of this kind speeds up with threads and processes alike in C++, and
// processes add isolation: a PNG that crashes or fails the decoder fails alone.
//
//   gb::ProcessPool workers;
//   BatchResult r = run_batch(Engine::processes, inputs, "out/procs", pipeline, {.processes = &workers});
//   for (const FileResult& f : r.files) if (!f.ok) std::puts(f.error.c_str());
//
// Each file is read and written by the calling process; only the decode, the operations
// and the encode run on the engine. With processes the PNG's bytes go to a worker in a
// sealed SharedBuffer and the new PNG comes back in one (no copy through the socket), and
// the decoding of untrusted input happens outside the program.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <gearbox/process/process_pool.hpp>
#include <gearbox/process/shared_buffer.hpp>
#include <gearbox/thread_pool.hpp>

namespace gearbox::imgproc {

struct Pipeline {
  bool grayscale = false;
  double scale = 1.0;   // resize by this factor (1: keep the size); the result is at least 1x1
  int blur_radius = 0;  // 0: no blur

  template <class Archive>
  void serialize(Archive& archive) {
    archive(grayscale, scale, blur_radius);
  }
};

// Decodes `png`, applies the pipeline in the order grayscale, resize, blur, and encodes
// the result. ImageError for a bad PNG; std::invalid_argument for a bad pipeline.
std::vector<std::byte> process_png(std::span<const std::byte> png, const Pipeline& pipeline);

// process_png as a ProcessPool call: the PNG in a sealed SharedBuffer, the result in one.
SharedBuffer process_png_shared(SharedBuffer png, Pipeline pipeline);

enum class Engine { sequential, threads, processes };
const char* to_string(Engine engine) noexcept;

struct Pools {
  ThreadPool* threads = nullptr;     // needed for Engine::threads
  ProcessPool* processes = nullptr;  // needed for Engine::processes
};

struct FileResult {
  std::filesystem::path input;
  bool ok = false;
  std::string error;            // why it failed: the decoder's reason, a crash, an I/O error
  std::size_t output_bytes = 0;
};

struct BatchResult {
  Engine engine = Engine::sequential;
  double seconds = 0;             // wall time of the whole batch, files read and written included
  std::vector<FileResult> files;  // in the order of the inputs
  std::size_t failed() const noexcept;
};

// Runs every input through the pipeline on `engine`, writing out_dir/<input's file name>
// (out_dir is created). A file that fails is reported in its FileResult; the others go
// on. std::invalid_argument if the engine's pool is missing.
BatchResult run_batch(Engine engine, const std::vector<std::filesystem::path>& inputs,
                      const std::filesystem::path& out_dir, const Pipeline& pipeline, Pools pools = {});

// The *.png files of `dir`, sorted by name.
std::vector<std::filesystem::path> png_files(const std::filesystem::path& dir);

}  // namespace gearbox::imgproc
