// ReadyQueue: the loop's FIFO of runnables, an intrusive singly-linked list (no
// allocation per schedule). Loop thread only.
#pragma once

#include <cstddef>

#include <gearbox/detail/task_core.hpp>

namespace gearbox::detail {

class ReadyQueue {
public:
  bool empty() const noexcept { return m_head == nullptr; }
  std::size_t size() const noexcept { return m_size; }

  void push(Runnable* runnable) noexcept {
    runnable->m_next = nullptr;
    *m_tail = runnable;
    m_tail = &runnable->m_next;
    ++m_size;
  }

  Runnable* pop() noexcept {
    Runnable* runnable = m_head;
    if (!runnable) return nullptr;
    m_head = runnable->m_next;
    if (!m_head) m_tail = &m_head;
    --m_size;
    return runnable;
  }

private:
  Runnable* m_head = nullptr;
  Runnable** m_tail = &m_head;
  std::size_t m_size = 0;
};

}  // namespace gearbox::detail
