// BufferedReader: lines and delimited records from any stream, with a bound on their size
// (so a peer that never sends a newline cannot make a server grow without limit).
//
//   gb::net::BufferedReader reader{stream, {.max_line = 1024}};
//   while (auto line = co_await reader.read_line()) {      // nullopt: clean end of stream
//     handle(*line);                                       // valid until the next read
//   }
//
// read_until(delimiter) returns the record without its delimiter; read_line() is
// read_until('\n') that also drops a '\r' before the '\n' (so telnet and nc -C work).
//   - End of stream with nothing buffered: std::nullopt.
//   - End of stream in the middle of a record: UnexpectedEof (the partial record is dropped).
//   - No delimiter within max_line bytes: LineTooLong. The reader then skips the rest of
//     that record (up to and including its delimiter) on the next call, so the caller can
//     answer with an error and carry on with the next record.
//
// `Stream` is anything with `Task<std::size_t> read(std::span<char>)` returning 0 at end of
// stream: TcpStream, UnixStream, a subprocess's stdout. The reader holds a reference to it:
// the stream must outlive the reader. Thread-safety: as the stream's.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include <gearbox/error.hpp>
#include <gearbox/task.hpp>

namespace gearbox::net {

struct BufferedReaderOptions {
  // The longest record accepted, without its delimiter (a '\r' that read_line drops
  // counts: a CRLF line may hold max_line - 1 characters).
  std::size_t max_line = 64 * 1024;
  std::size_t read_size = 4096;      // bytes asked of the stream per read
};

template <class Stream>
class BufferedReader {
public:
  explicit BufferedReader(Stream& stream, BufferedReaderOptions options = {})
      : m_stream(&stream), m_options(options), m_buffer(options.max_line + 1 + options.read_size) {}

  // The next record up to `delimiter` (not included). See the header comment.
  [[nodiscard]] Task<std::optional<std::string_view>> read_until(char delimiter) {
    if (m_skipping && !co_await skip_past(delimiter)) co_return std::nullopt;
    std::size_t scanned = 0;  // bytes after m_begin known to hold no delimiter
    for (;;) {
      const char* start = m_buffer.data() + m_begin;
      if (const void* found = std::memchr(start + scanned, delimiter, m_end - m_begin - scanned)) {
        const std::size_t length = static_cast<const char*>(found) - start;
        m_begin += length + 1;
        if (length > m_options.max_line) break;  // the delimiter came, but too late
        co_return std::string_view(start, length);
      }
      scanned = m_end - m_begin;
      if (scanned > m_options.max_line) {
        m_begin = m_end = 0;
        m_skipping = true;  // the rest of this record goes at the next call
        throw LineTooLong(m_options.max_line);
      }
      if (co_await fill() == 0) {
        if (m_end == m_begin) co_return std::nullopt;
        m_begin = m_end = 0;
        throw UnexpectedEof("read_until");
      }
    }
    throw LineTooLong(m_options.max_line);
  }

  // read_until('\n'), dropping a '\r' before the '\n'.
  [[nodiscard]] Task<std::optional<std::string_view>> read_line() {
    std::optional<std::string_view> line = co_await read_until('\n');
    if (line && !line->empty() && line->back() == '\r') line->remove_suffix(1);
    co_return line;
  }

  // Reads up to buffer.size() bytes: buffered ones first, else from the stream. 0 at end.
  [[nodiscard]] Task<std::size_t> read(std::span<char> buffer) {
    if (m_begin == m_end) co_return co_await m_stream->read(buffer);
    const std::size_t n = std::min(buffer.size(), m_end - m_begin);
    std::memcpy(buffer.data(), m_buffer.data() + m_begin, n);
    m_begin += n;
    co_return n;
  }

  // Bytes read from the stream and not yet returned.
  std::size_t buffered() const noexcept { return m_end - m_begin; }

private:
  // Reads more into the buffer (moving what is left to its front first); 0 at end.
  Task<std::size_t> fill() {
    if (m_begin > 0) {
      std::memmove(m_buffer.data(), m_buffer.data() + m_begin, m_end - m_begin);
      m_end -= m_begin;
      m_begin = 0;
    }
    const std::size_t room = std::min(m_options.read_size, m_buffer.size() - m_end);
    const std::size_t n = co_await m_stream->read(std::span<char>(m_buffer.data() + m_end, room));
    m_end += n;
    co_return n;
  }

  // Drops bytes up to and including the next `delimiter`; false if the stream ended first.
  Task<bool> skip_past(char delimiter) {
    for (;;) {
      const char* start = m_buffer.data() + m_begin;
      if (const void* found = std::memchr(start, delimiter, m_end - m_begin)) {
        m_begin += static_cast<const char*>(found) - start + 1;
        m_skipping = false;
        co_return true;
      }
      m_begin = m_end = 0;
      if (co_await fill() == 0) co_return false;
    }
  }

  Stream* m_stream;
  BufferedReaderOptions m_options;
  std::vector<char> m_buffer;  // [m_begin, m_end) holds bytes read and not yet returned
  std::size_t m_begin = 0;
  std::size_t m_end = 0;
  bool m_skipping = false;  // a record was too long: skip to its end before the next one
};

}  // namespace gearbox::net
