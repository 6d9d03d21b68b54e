// Misuse: ThreadPool::map of a two-argument function over a range of tuples.
#include <tuple>
#include <vector>

#include <gearbox/thread_pool.hpp>

int add(int a, int b) { return a + b; }

void misuse(gearbox::ThreadPool& pool, const std::vector<std::tuple<int, int>>& pairs) { pool.map(add, pairs); }
