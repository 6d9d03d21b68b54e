#include <gearbox/parse_duration.hpp>

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>

namespace gearbox {
namespace {

constexpr std::string_view k_accepted_forms = "(use 2s, 500ms or 1.5; units: ns, us, ms, s, m, h)";
constexpr std::uint64_t k_max_ns = static_cast<std::uint64_t>(std::chrono::nanoseconds::max().count());
constexpr std::uint64_t k_ns_per_hour = 3'600'000'000'000;

// One nanosecond-count of a unit is `factor` * 10^`exponent`: writing it so lets the
// parser move the decimal point instead of multiplying a fraction (exact, no floating point).
struct Unit {
  std::string_view name;
  std::uint64_t factor;
  int exponent;
};
constexpr std::array<Unit, 7> k_units{{
    {"ns", 1, 0},
    {"us", 1, 3},
    {"\xC2\xB5s", 1, 3},  // µs, in UTF-8
    {"ms", 1, 6},
    {"s", 1, 9},
    {"m", 6, 10},
    {"h", 36, 11},
}};

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// `text` as it appears in a message: quoted, on one line, and short.
std::string quoted(std::string_view text) {
  constexpr std::size_t k_longest = 40;
  std::string out = "\"";
  for (char c : text.substr(0, k_longest)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  if (text.size() > k_longest) out += "...";
  return out + "\"";
}

[[noreturn]] void refuse(std::string_view text, std::string_view reason) {
  throw std::invalid_argument(quoted(text) + " " + std::string(reason));
}

// x * 10 + digit, or nullopt past k_max_ns.
std::optional<std::uint64_t> shift_in(std::uint64_t x, unsigned digit) noexcept {
  if (x > (k_max_ns - digit) / 10) return std::nullopt;
  return x * 10 + digit;
}

enum class Problem { none, malformed, too_long };

// The nanoseconds `text` spells, or the problem with it.
Problem parse(std::string_view text, std::uint64_t& ns) noexcept {
  std::size_t end_of_number = 0;
  while (end_of_number < text.size() && is_digit(text[end_of_number])) ++end_of_number;
  const std::string_view whole = text.substr(0, end_of_number);
  std::string_view fraction;
  if (end_of_number < text.size() && text[end_of_number] == '.') {
    std::size_t end = end_of_number + 1;
    while (end < text.size() && is_digit(text[end])) ++end;
    fraction = text.substr(end_of_number + 1, end - end_of_number - 1);
    if (fraction.empty()) return Problem::malformed;  // "1." or "1.s"
    end_of_number = end;
  }
  if (whole.empty()) return Problem::malformed;  // "", ".5", "s", "-1", "+1", " 1"

  const std::string_view unit_name = text.substr(end_of_number);
  const Unit* unit = &k_units[4];  // seconds
  if (!unit_name.empty()) {
    unit = nullptr;
    for (const Unit& u : k_units)
      if (u.name == unit_name) unit = &u;
    if (!unit) return Problem::malformed;
  }

  // Move the decimal point `exponent` places right: `shifted` is the integer part of
  // whole.fraction * 10^exponent and `rest` the fraction digits left over.
  std::uint64_t shifted = 0;
  for (char c : whole) {
    const auto next = shift_in(shifted, static_cast<unsigned>(c - '0'));
    if (!next) return Problem::too_long;
    shifted = *next;
  }
  std::string_view rest = fraction;
  for (int i = 0; i < unit->exponent; ++i) {
    const unsigned digit = rest.empty() ? 0 : static_cast<unsigned>(rest.front() - '0');
    if (!rest.empty()) rest.remove_prefix(1);
    const auto next = shift_in(shifted, digit);
    if (!next) return Problem::too_long;
    shifted = *next;
  }
  if (shifted > k_max_ns / unit->factor) return Problem::too_long;
  ns = shifted * unit->factor;

  // What the leftover digits add: floor(factor * 0.rest). 17 digits keep factor * digits
  // below 2^64 (factor is at most 36); later digits are worth less than a nanosecond here.
  std::uint64_t digits = 0;
  std::uint64_t scale = 1;
  for (char c : rest.substr(0, 17)) {
    digits = digits * 10 + static_cast<unsigned>(c - '0');
    scale *= 10;
  }
  const std::uint64_t extra = unit->factor * digits / scale;
  if (extra > k_max_ns - ns) return Problem::too_long;
  ns += extra;
  return Problem::none;
}

}  // namespace

std::chrono::nanoseconds parse_duration(std::string_view text) {
  std::uint64_t ns = 0;
  switch (parse(text, ns)) {
    case Problem::none:
      return std::chrono::nanoseconds(static_cast<std::int64_t>(ns));
    case Problem::too_long:
      refuse(text, "is too long for a duration (the longest is " + std::to_string(k_max_ns / k_ns_per_hour) + "h)");
    case Problem::malformed:
      break;
  }
  std::uint64_t unused = 0;
  if (text.starts_with('-') && parse(text.substr(1), unused) != Problem::malformed)
    refuse(text, "is not a duration: a duration cannot be negative " + std::string(k_accepted_forms));
  refuse(text, "is not a duration " + std::string(k_accepted_forms));
}

std::string format_duration(std::chrono::nanoseconds duration) {
  const std::int64_t count = duration.count();
  if (count == 0) return "0s";
  // The magnitude as unsigned, so that nanoseconds::min() has one too.
  const std::uint64_t magnitude = count < 0 ? 0 - static_cast<std::uint64_t>(count) : static_cast<std::uint64_t>(count);
  const std::string sign = count < 0 ? "-" : "";
  struct Step {
    std::string_view name;
    std::uint64_t ns;
  };
  constexpr std::array<Step, 6> k_steps{{{"h", k_ns_per_hour},
                                         {"m", 60'000'000'000},
                                         {"s", 1'000'000'000},
                                         {"ms", 1'000'000},
                                         {"us", 1'000},
                                         {"ns", 1}}};
  for (const Step& step : k_steps)
    if (magnitude % step.ns == 0) return sign + std::to_string(magnitude / step.ns) + std::string(step.name);
  return {};  // unreachable: every count is a whole number of nanoseconds
}

}  // namespace gearbox
