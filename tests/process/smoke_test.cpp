#include <gtest/gtest.h>
#include <gearbox/gearbox.hpp>
namespace gb = gearbox;
namespace {
int square(int x) { return x * x; }
GEARBOX_TASK(square);
}
TEST(Smoke, square) {
  gb::ProcessPool pool{{.workers = 2}};
  EXPECT_EQ(pool.submit(gb::task<square>, 7).get(), 49);
}
