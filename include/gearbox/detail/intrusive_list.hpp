// Intrusive doubly-linked circular lists: O(1) link and unlink with no allocation, for
// the runtime's wait lists (timers, waiters, live tasks). An element derives from (or
// holds) a ListNode; a List owns a sentinel. Not thread-safe: a list belongs to one loop.
#pragma once

namespace gearbox::detail {

struct ListNode {
  ListNode* m_prev = nullptr;
  ListNode* m_next = nullptr;

  bool linked() const noexcept { return m_next != nullptr; }

  // Removes this node from whatever list holds it. Safe to call on an unlinked node.
  void unlink() noexcept {
    if (!m_next) return;
    m_prev->m_next = m_next;
    m_next->m_prev = m_prev;
    m_prev = m_next = nullptr;
  }
};

class List {
public:
  List() noexcept { m_head.m_prev = m_head.m_next = &m_head; }
  List(const List&) = delete;
  List& operator=(const List&) = delete;
  ~List() { clear(); }

  bool empty() const noexcept { return m_head.m_next == &m_head; }
  ListNode* front() const noexcept { return empty() ? nullptr : m_head.m_next; }

  void push_back(ListNode* node) noexcept {
    node->m_prev = m_head.m_prev;
    node->m_next = &m_head;
    m_head.m_prev->m_next = node;
    m_head.m_prev = node;
  }

  ListNode* pop_front() noexcept {
    ListNode* node = front();
    if (node) node->unlink();
    return node;
  }

  // Moves every node of `other` to the back of this list.
  void splice_back(List& other) noexcept {
    if (other.empty()) return;
    ListNode* first = other.m_head.m_next;
    ListNode* last = other.m_head.m_prev;
    first->m_prev = m_head.m_prev;
    m_head.m_prev->m_next = first;
    last->m_next = &m_head;
    m_head.m_prev = last;
    other.m_head.m_prev = other.m_head.m_next = &other.m_head;
  }

  // Calls fn(node) for each node, front to back; fn may unlink the node it is given.
  template <class Fn>
  void for_each(Fn&& fn) {
    for (ListNode* node = m_head.m_next; node != &m_head;) {
      ListNode* next = node->m_next;
      fn(node);
      node = next;
    }
  }

  // Unlinks every node (the nodes themselves are not owned).
  void clear() noexcept {
    while (pop_front()) {
    }
  }

private:
  ListNode m_head;
};

}  // namespace gearbox::detail
