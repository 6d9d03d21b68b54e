// A program that uses an installed gearbox through find_package, as a user's would.
#include <gearbox/gearbox.hpp>

using namespace std::chrono_literals;

gearbox::Task<int> app() {
  auto [a, b] = co_await gearbox::gather(gearbox::sleep_for(10ms), []() -> gearbox::Task<int> { co_return 7; }());
  (void)a;
  co_return b;
}

int main() { return gearbox::run(app()) == 7 ? 0 : 1; }
