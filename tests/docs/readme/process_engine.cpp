// README's process engine sample, compiled.
#include <tuple>
#include <vector>

#include <gearbox/gearbox.hpp>

namespace gb = gearbox;

struct Image {
  std::vector<unsigned char> pixels;
  template <class Archive>
  void serialize(Archive& archive) {
    archive(pixels);
  }
};
Image load_image(const char* path);

// README sample begin
Image blur(Image img, int radius);           // Image has a cereal serialize() member
GEARBOX_REMOTE(blur);                        // workers are this executable: register by name

int main(int argc, char** argv) {
  gb::init(argc, argv);                      // a worker never returns from here
  Image img = load_image(argv[1]);
  gb::ProcessPool pool{{.workers = 4, .max_restarts = 5}};
  auto f = pool.submit(gb::remote<blur>, img, 3);          // f.get(), or co_await f on a loop
  try { f.get(); } catch (const gb::WorkerCrashed& e) { /* e.signal(), e.pid() */ }
  std::vector<std::tuple<Image, int>> jobs{{img, 3}, {img, 5}};  // several arguments: a tuple each
  auto all = pool.map(gb::remote<blur>, jobs).get();       // ordered; batched automatically
}
// README sample end
