// PieceCursor: where a vectored write stands in its pieces, and the window of iovecs over
// what is left (at most IOV_MAX, empty pieces skipped, so a window is never all empty).
// Used by both paths of AsyncFd::write_all_vectored.
#pragma once

#include <sys/uio.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

namespace gearbox::detail {

class PieceCursor {
public:
  explicit PieceCursor(std::span<const std::string_view> pieces) : m_pieces(pieces) {
    m_window.reserve(std::min<std::size_t>(pieces.size(), IOV_MAX));
    skip_finished();
  }

  bool done() const noexcept { return m_next == m_pieces.size(); }

  // Fills the window over what is left; returns its total size.
  std::size_t fill() {
    m_window.clear();
    std::size_t size = 0;
    for (std::size_t i = m_next; i < m_pieces.size() && m_window.size() < IOV_MAX; ++i) {
      const std::size_t skip = i == m_next ? m_offset : 0;
      if (m_pieces[i].size() == skip) continue;
      m_window.push_back({const_cast<char*>(m_pieces[i].data() + skip), m_pieces[i].size() - skip});
      size += m_pieces[i].size() - skip;
    }
    return size;
  }
  iovec* window() noexcept { return m_window.data(); }
  int window_size() const noexcept { return static_cast<int>(m_window.size()); }

  // Moves past `written` bytes.
  void advance(std::size_t written) noexcept {
    for (std::size_t left = written; left > 0;) {
      const std::size_t take = std::min(left, m_pieces[m_next].size() - m_offset);
      left -= take;
      m_offset += take;
      if (m_offset == m_pieces[m_next].size()) {
        ++m_next;
        m_offset = 0;
      }
    }
    skip_finished();
  }

private:
  void skip_finished() noexcept {
    while (m_next < m_pieces.size() && m_offset == m_pieces[m_next].size()) {
      ++m_next;
      m_offset = 0;
    }
  }

  std::span<const std::string_view> m_pieces;
  std::vector<iovec> m_window;
  std::size_t m_next = 0;    // the first piece not wholly written
  std::size_t m_offset = 0;  // bytes of it already written
};

}  // namespace gearbox::detail
