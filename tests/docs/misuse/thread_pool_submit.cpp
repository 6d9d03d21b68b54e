// Misuse: ThreadPool::submit with arguments fn cannot take. Must fail with one sentence.
#include <gearbox/thread_pool.hpp>

int add(int a, int b) { return a + b; }

void misuse(gearbox::ThreadPool& pool) { (void)pool.submit(add, 1); }
