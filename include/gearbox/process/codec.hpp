// The process pool's codec: values to bytes and back with cereal's binary archive, so that
// arguments and results cross into a worker process. Standard types work out of the box
// (include the cereal/types/*.hpp header for each standard container you send, or
// <gearbox/process/codec.hpp>, which includes the common ones); a user type adds
//
//   struct Point { double x, y;
//     template <class Archive> void serialize(Archive& ar) { ar(x, y); } };
//
// File descriptors (a SharedBuffer) travel beside the bytes: while a value is encoded,
// the EncodeScope of the calling thread collects them, and while one is decoded, the
// DecodeScope hands out the descriptors that arrived with it (SCM_RIGHTS).
//
// decode() fails (cereal::Exception or std::runtime_error) on bytes that do not hold a
// value of the expected type, including bytes left over after it. Note that cereal
// trusts the sizes it reads: decoding hostile bytes may attempt a large allocation.
//
// Thread-safety: the functions are reentrant; the scopes are per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <memory>
#include <ostream>
#include <span>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <cereal/archives/binary.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/chrono.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>

namespace gearbox::detail {

// Appends what cereal writes to a std::string (no std::stringstream copy at the end).
class StringSink final : public std::streambuf {
public:
  explicit StringSink(std::string& out) noexcept : m_out(&out) {}

protected:
  std::streamsize xsputn(const char* data, std::streamsize size) override {
    m_out->append(data, static_cast<std::size_t>(size));
    return size;
  }
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof())) m_out->push_back(traits_type::to_char_type(c));
    return traits_type::not_eof(c);
  }

private:
  std::string* m_out;
};

// Lets cereal read from bytes it does not own.
class ViewSource final : public std::streambuf {
public:
  explicit ViewSource(std::string_view bytes) noexcept {
    char* begin = const_cast<char*>(bytes.data());  // never written: the get area is read-only
    setg(begin, begin, begin + bytes.size());
  }
  std::size_t remaining() const noexcept { return static_cast<std::size_t>(egptr() - gptr()); }
};

// Descriptors gathered while encoding on this thread; each holder (a SharedBuffer) also
// leaves an owner that keeps the descriptor open until the bytes have been sent.
struct EncodeScope {
  std::vector<int> fds;
  std::vector<std::shared_ptr<const void>> owners;

  EncodeScope() noexcept : m_previous(std::exchange(current(), this)) {}
  ~EncodeScope() { current() = m_previous; }
  EncodeScope(const EncodeScope&) = delete;
  EncodeScope& operator=(const EncodeScope&) = delete;
  static EncodeScope*& current() noexcept {
    static thread_local EncodeScope* scope = nullptr;
    return scope;
  }

private:
  EncodeScope* m_previous;
};

// Descriptors that arrived with the bytes being decoded on this thread. take() moves one
// out (each index at most once); those never taken are closed with the scope.
struct DecodeScope {
  // `keep_alive`, if given, receives an owner of every buffer decoded, so that its memory
  // outlives the decoded value (a worker unmaps its arguments after it has answered).
  explicit DecodeScope(std::span<int> fds, std::vector<std::shared_ptr<const void>>* keep_alive = nullptr) noexcept
      : keep_alive(keep_alive), m_fds(fds), m_previous(std::exchange(current(), this)) {}
  ~DecodeScope();
  DecodeScope(const DecodeScope&) = delete;
  DecodeScope& operator=(const DecodeScope&) = delete;
  static DecodeScope*& current() noexcept {
    static thread_local DecodeScope* scope = nullptr;
    return scope;
  }
  int take(std::uint32_t index);

  std::vector<std::shared_ptr<const void>>* keep_alive;

private:
  std::span<int> m_fds;  // -1 once taken
  DecodeScope* m_previous;
};

// Appends the encoding of `values` (in order) to `out`.
template <class... T>
void encode_into(std::string& out, const T&... values) {
  StringSink sink{out};
  std::ostream stream{&sink};
  cereal::BinaryOutputArchive archive{stream};
  if constexpr (sizeof...(T) > 0) archive(values...);
}

// Decodes one T from exactly `bytes` (std::runtime_error if bytes are left over).
template <class T>
T decode(std::string_view bytes) {
  ViewSource source{bytes};
  std::istream stream{&source};
  T value{};
  {
    cereal::BinaryInputArchive archive{stream};
    archive(value);
  }
  if (source.remaining() != 0) throw std::runtime_error("gearbox: " + std::to_string(source.remaining()) + " bytes left over after decoding");
  return value;
}

// The arguments of a call did not decode (reported as RemoteError "gearbox::BadArguments").
struct BadArguments : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class T>
T decode_arguments(std::string_view bytes) {
  try {
    return decode<T>(bytes);
  } catch (const std::exception& e) {
    throw BadArguments(e.what());
  }
}

}  // namespace gearbox::detail
