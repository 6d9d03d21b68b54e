// libFuzzer target for the HTTP request parser (src/http/request_parser.hpp), the code
// that reads bytes from any client on the network.
//
// Properties checked on every input, besides "no crash, no sanitizer report":
// - feed() never uses more bytes than it was given, and a complete or failed parser uses
//   none;
// - a complete request's body is within max_body_bytes; a failure has a 4xx/5xx status
//   and a reason;
// - chunk boundaries do not matter: the input fed whole and fed in pieces (sizes taken
//   from the input's first byte) gives the same requests and the same final error.
//
// Built with clang's -fsanitize=fuzzer by tests/fuzz/CMakeLists.txt and run for a bounded
// time by ctest (fuzz.http_request); the same file with replay_main.cpp replays the seed
// corpus in every preset.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "http/request_parser.hpp"

namespace {

using gearbox::http::detail::ParseLimits;
using gearbox::http::detail::RequestParser;
using State = RequestParser::State;

constexpr ParseLimits k_limits{.max_head_bytes = 1 << 20, .max_body_bytes = 1000};

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "http_request_fuzz: property violated: %s\n", what);
  std::abort();
}

// Everything the parser made of `input` fed in pieces of `piece` bytes (0: whole), as text.
std::string parse_all(std::string_view input, std::size_t piece) {
  RequestParser parser(k_limits);
  std::string seen;
  std::size_t at = 0;
  while (at < input.size()) {
    const std::size_t size = piece == 0 ? input.size() - at : std::min(piece, input.size() - at);
    const std::string_view chunk = input.substr(at, size);
    const std::size_t used = parser.feed(chunk);
    if (used > chunk.size()) violated("feed used more bytes than it was given");
    at += used;
    if (parser.state() == State::failed) {
      if (parser.error().status < 400 || parser.error().status > 599) violated("an error status outside 4xx/5xx");
      if (parser.error().reason.empty()) violated("an error without a reason");
      if (parser.feed(input.substr(at)) != 0) violated("a failed parser used bytes");
      return seen + "error " + std::to_string(parser.error().status);
    }
    if (parser.state() == State::complete) {
      if (parser.feed("GET / HTTP/1.1\r\n\r\n") != 0) violated("a complete parser used bytes");
      const gearbox::http::Request request = parser.take();
      if (request.body.size() > k_limits.max_body_bytes) violated("a body over the limit");
      seen += request.method + " " + request.target + " " + std::to_string(request.headers.size()) + " " +
              std::to_string(request.body.size()) + ":" + request.body + "\n";
    } else if (used < chunk.size()) {
      violated("the parser stopped early without completing or failing");
    }
  }
  parser.finish();
  if (parser.state() == State::failed) seen += "cut " + std::to_string(parser.error().status);
  return seen;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = 1 + data[0] % 16;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (parse_all(input, 0) != parse_all(input, piece)) violated("the result depends on how the input was split");
  return 0;
}
