// The `timeline` subcommand of gearbox-lab: draw who ran when from a gearbox trace (the
// model is timeline.hpp, the drawing timeline_render.hpp).
//
//   CLI::App app{"gearbox-lab"};
//   const lab::TimelineCommand timeline(app);   // adds `timeline FILE.json [options]`
//   CLI11_PARSE(app, argc, argv);
//   if (const auto code = timeline.run()) return *code;
//
// It prints the timeline on stdout (Unicode if the locale is UTF-8 and not --ascii, colour
// if stdout is a terminal and NO_COLOR is unset) and writes the SVG with --svg. A trace
// that cannot be read throws TraceError, an SVG that cannot be written std::runtime_error,
// each a one-line message naming the file. Not copyable or movable: CLI11 holds pointers
// to the options inside.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

namespace gearbox::lab {

struct TimelineRequest {
  std::string file;           // the trace
  std::string rows = "auto";  // auto, units or threads
  std::size_t width = 80;
  std::size_t max_rows = 16;
  bool ascii = false;  // ASCII only, whatever the locale
  std::string svg;     // also write an SVG here, unless empty
};

// Does what `gearbox-lab timeline` does for `request`; returns the exit code.
int run_timeline(const TimelineRequest& request);

class TimelineCommand {
public:
  explicit TimelineCommand(CLI::App& app);
  TimelineCommand(const TimelineCommand&) = delete;
  TimelineCommand& operator=(const TimelineCommand&) = delete;

  // After parsing: runs `timeline` if it was chosen and returns its exit code, else std::nullopt.
  std::optional<int> run() const;

private:
  CLI::App* m_command;
  TimelineRequest m_request;
};

}  // namespace gearbox::lab
