// Misuse: ProcessPool::map of a two-parameter remote function over a range of ints.
#include <vector>

#include <gearbox/process/process_pool.hpp>
#include <gearbox/process/registry.hpp>

int add(int a, int b) { return a + b; }
GEARBOX_REMOTE(add);

void misuse(gearbox::ProcessPool& pool, const std::vector<int>& values) { (void)pool.map(gearbox::remote<add>, values); }
