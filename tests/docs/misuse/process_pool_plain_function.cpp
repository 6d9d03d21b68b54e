// Misuse: ProcessPool::submit given a plain function instead of gb::remote<fn>.
#include <gearbox/process/process_pool.hpp>
#include <gearbox/process/registry.hpp>

int square(int x) { return x * x; }
GEARBOX_REMOTE(square);

void misuse(gearbox::ProcessPool& pool) { pool.submit(square, 3); }
