// README's thread engine sample, compiled.
#include <cstddef>
#include <string>
#include <vector>

#include <gearbox/gearbox.hpp>

namespace gb = gearbox;

long count_primes(long from, long to);
float shade(std::size_t pixel);
std::string read_file(std::string path);  // blocks

// README sample begin
long compute(std::vector<float>& pixels) {
  gb::ThreadPool pool{{.workers = 4}};
  gb::Future<long> f = pool.submit(count_primes, 0, 1'000'000);
  long primes = f.get();                                // or co_await f on a loop
  pool.parallel_for(0, pixels.size(), [&](std::size_t i) { pixels[i] = shade(i); });
  return primes;
}

gb::Task<std::string> handler(std::string path) {
  co_return co_await gb::to_thread(read_file, path);   // blocking call, loop keeps running
}
// README sample end
