// README's "A taste of the API", compiled (a whole program, but for fetch's body).

// README sample begin
#include <gearbox/gearbox.hpp>
namespace gb = gearbox;
using namespace std::chrono_literals;

gb::Task<std::string> fetch(std::string host);   // some async I/O

gb::Task<int> app() {
  co_await gb::gather(gb::sleep_for(2s), gb::sleep_for(2s));      // ~2 s, not ~4 s
  try {
    auto page = co_await gb::timeout(500ms, fetch("localhost"));  // cancels fetch on expiry
  } catch (const gb::TimeoutError&) { /* ... */ }

  gb::TaskGroup group;                      // structured: children never outlive it
  for (auto host : {"a", "b", "c"}) group.spawn(fetch(host));
  co_await group.join();                    // first failure cancels the rest, rethrown here

  gb::Channel<int> channel{16};             // bounded: a full channel suspends the sender
  auto producer = gb::spawn([](gb::Channel<int>& ch) -> gb::Task<void> {
    for (int i = 0; i < 100; ++i) co_await ch.send(i);
    ch.close();
  }(channel));
  int sum = 0;
  while (auto value = co_await channel.receive()) sum += *value;
  co_return sum;
}

int main() { return gb::run(app()) == 4950 ? 0 : 1; }
// README sample end
