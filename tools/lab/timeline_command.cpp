#include "timeline_command.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "timeline.hpp"
#include "timeline_render.hpp"

namespace gearbox::lab {

int run_timeline(const TimelineRequest& request) {
  const Timeline timeline = load_timeline(request.file, parse_row_mode(request.rows));
  AsciiOptions options = ascii_options_for_stdout();
  options.width = request.width;
  options.max_rows = request.max_rows;
  options.unicode = options.unicode && !request.ascii;
  std::fputs(render_ascii(timeline, options).c_str(), stdout);
  if (request.svg.empty()) return 0;

  SvgOptions svg;
  svg.title = "gearbox timeline: " + std::filesystem::path(request.file).filename().string();
  svg.max_rows = request.max_rows;
  std::ofstream out(request.svg, std::ios::binary | std::ios::trunc);
  out << render_svg(timeline, svg);
  out.close();
  if (!out) throw std::runtime_error(request.svg + ": cannot write the SVG: " + std::strerror(errno));
  std::printf("wrote %s\n", request.svg.c_str());
  return 0;
}

TimelineCommand::TimelineCommand(CLI::App& app)
    : m_command(app.add_subcommand("timeline", "draw who ran when from a gearbox trace (Chrome JSON)")) {
  m_command->add_option("file", m_request.file, "the trace, as gearbox writes it")->required();
  m_command->add_option("--rows", m_request.rows, "one row per unit of work or per thread (default: auto)")
      ->check(CLI::IsMember({"auto", "units", "threads"}));
  m_command->add_option("--width", m_request.width, "columns (default: 80)")
      ->check(CLI::Range(static_cast<int>(AsciiOptions::k_min_width), 1000));
  m_command->add_option("--max-rows", m_request.max_rows, "rows drawn, the rest counted (default: 16)");
  m_command->add_flag("--ascii", m_request.ascii, "ASCII characters only");
  m_command->add_option("--svg", m_request.svg, "also write the timeline as an SVG image");
}

std::optional<int> TimelineCommand::run() const {
  if (!*m_command) return std::nullopt;
  return run_timeline(m_request);
}

}  // namespace gearbox::lab
