// parse_duration and format_duration (include/gearbox/parse_duration.hpp): every accepted
// form gives the exact number of nanoseconds; every refused form throws
// std::invalid_argument with a one-line message that quotes the text; format_duration
// writes what parse_duration reads back.
#include <gearbox/parse_duration.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using gearbox::format_duration;
using gearbox::parse_duration;
using namespace std::chrono_literals;
using std::chrono::nanoseconds;

// The message parse_duration throws for `text`, or "" if it accepts it.
std::string refusal(std::string_view text) {
  try {
    parse_duration(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

// The message for `text` refused for `reason`. (Built by append: g++ 12 warns, falsely,
// about "literal" + std::string concatenations it inlines, GCC bug 105329.)
std::string message(std::string_view text, std::string_view reason) {
  std::string out;
  out.append("\"").append(text).append("\" ").append(reason);
  return out;
}

constexpr std::string_view k_not_a_duration = "is not a duration (use 2s, 500ms or 1.5; units: ns, us, ms, s, m, h)";

struct Accepted {
  std::string_view text;
  nanoseconds expected;
};

TEST(ParseDuration, every_unit_and_a_bare_number_give_the_exact_nanoseconds) {
  const std::vector<Accepted> cases = {
      {"2s", 2s},           {"500ms", 500ms},         {"1.5", 1500ms},   {"7", 7s},
      {"250us", 250us},     {"250\xC2\xB5s", 250us},  {"40ns", 40ns},    {"3m", 3min},
      {"2h", 2h},           {"0", 0s},                {"0s", 0s},        {"0.0ms", 0ns},
      {"1.5h", 90min},      {"0.25m", 15s},           {"1.000001s", 1000001us},
      {"007s", 7s},         {"0.5ns", 0ns},           {"1.999ns", 1ns},  {"0.000000001", 1ns},
      {"9223372036854775807ns", nanoseconds::max()},
  };
  for (const Accepted& c : cases) {
    SCOPED_TRACE(std::string(c.text));
    EXPECT_EQ(parse_duration(c.text), c.expected);
  }
}

TEST(ParseDuration, a_fraction_of_minutes_or_hours_is_exact_to_the_nanosecond) {
  EXPECT_EQ(parse_duration("0.0000000000001h"), 0ns);  // 0.36 ns
  EXPECT_EQ(parse_duration("0.000000000001h"), 3ns);   // 3.6 ns
  EXPECT_EQ(parse_duration("1.123456789123m"), 67'407'407'347ns);
  EXPECT_EQ(parse_duration("0.123456789012345678901234s"), 123'456'789ns);
}

TEST(ParseDuration, malformed_text_is_refused_with_the_accepted_forms) {
  const std::vector<std::string_view> refused = {
      "",     "s",     "ms",    "1x",    "1 s",  " 1s",  "1s ",   "+1s",  "1.",  ".5",
      "1.s",  "1e3",   "1e3s",  "inf",   "nan",  "NaN",  "1S",    "1MS",  "1sec", "1min",
      "1ss",  "1h30m", "1,5s",  "0x10",  "1..5", "1.5.", "--1s",  "1-s",  "s1",  "ms500",
  };
  for (std::string_view text : refused) {
    SCOPED_TRACE(std::string(text));
    EXPECT_EQ(refusal(text), message(text, k_not_a_duration));
  }
}

TEST(ParseDuration, a_negative_duration_is_refused_as_negative) {
  const std::string_view reason =
      "is not a duration: a duration cannot be negative (use 2s, 500ms or 1.5; units: ns, us, ms, s, m, h)";
  EXPECT_EQ(refusal("-1s"), message("-1s", reason));
  EXPECT_EQ(refusal("-1.5"), message("-1.5", reason));
  EXPECT_EQ(refusal("-0.5ms"), message("-0.5ms", reason));
}

TEST(ParseDuration, a_duration_beyond_what_nanoseconds_hold_is_refused_as_too_long) {
  const std::string_view reason = "is too long for a duration (the longest is 2562047h)";
  for (std::string_view text :
       {"9223372036854775808ns", "2562048h", "9223372037s", "99999999999999999999999999", "9223372036.9999999999s"}) {
    SCOPED_TRACE(std::string(text));
    EXPECT_EQ(refusal(text), message(text, reason));
  }
  // The longest whole number of hours still fits.
  EXPECT_EQ(parse_duration("2562047h"), 2562047h);
}

TEST(ParseDuration, the_message_stays_on_one_line_and_short) {
  EXPECT_EQ(refusal("1\ns"), message("1?s", k_not_a_duration));
  std::string shortened(40, 'x');
  shortened += "...";
  EXPECT_EQ(refusal(std::string(100, 'x')), message(shortened, k_not_a_duration));
}

TEST(FormatDuration, a_duration_is_written_in_the_largest_unit_that_counts_it_whole) {
  EXPECT_EQ(format_duration(0s), "0s");
  EXPECT_EQ(format_duration(2s), "2s");
  EXPECT_EQ(format_duration(1500ms), "1500ms");
  EXPECT_EQ(format_duration(10min), "10m");
  EXPECT_EQ(format_duration(90min), "90m");
  EXPECT_EQ(format_duration(2h), "2h");
  EXPECT_EQ(format_duration(250us), "250us");
  EXPECT_EQ(format_duration(1001ns), "1001ns");
  EXPECT_EQ(format_duration(-3s), "-3s");
  EXPECT_EQ(format_duration(nanoseconds::min()), "-9223372036854775808ns");
}

TEST(FormatDuration, parse_duration_reads_back_what_format_duration_writes) {
  for (nanoseconds d : {nanoseconds{0}, nanoseconds{1}, nanoseconds{1500000}, nanoseconds{60'000'000'000},
                        nanoseconds{3'600'000'000'001}, nanoseconds{86'400'000'000'000}, nanoseconds::max()}) {
    SCOPED_TRACE(d.count());
    EXPECT_EQ(parse_duration(format_duration(d)), d);
  }
}

}  // namespace
