#include "cli/report_writer.h"

#include <spawn.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "core/file_util.h"
#include "core/report/page.h"

extern char** environ;

namespace cadenza {
namespace fs = std::filesystem;

namespace {

// Runs `gnuplot script` and waits; its stderr goes to ours (gnuplot names the line of any error).
Status RunGnuplot(const std::string& script) {
  pid_t pid = 0;
  const char* argv[] = {"gnuplot", script.c_str(), nullptr};
  const int rc = posix_spawnp(&pid, "gnuplot", nullptr, nullptr, const_cast<char* const*>(argv), environ);
  if (rc != 0) {
    return FailedPrecondition(std::string("gnuplot: cannot run it (") + std::strerror(rc) +
                              "): install gnuplot-nox (scripts/install-deps.sh does)");
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return IoError(std::string("gnuplot: ") + std::strerror(errno));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return InternalError(script + ": gnuplot failed (its message is above)");
  return Status::Ok();
}

}  // namespace

std::string MachineDescription() {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  struct utsname u;
  std::string os = ::uname(&u) == 0 ? std::string(u.sysname) + " " + u.release + " " + u.machine : "unknown OS";
  return std::string(host) + " (" + std::to_string(std::thread::hardware_concurrency()) + " cores, " + os + ")";
}

StatusOr<ReportFiles> WriteReport(const std::string& cells_json, const std::string& source_name,
                                  const std::vector<RunCurves>& curves, ReportContext context, const std::string& out_dir) {
  auto cells = ParseCells(cells_json, source_name);
  if (!cells.ok()) return cells.status();
  const fs::path out(out_dir), figs = out / "figures";
  std::error_code ec;
  fs::create_directories(figs, ec);
  if (ec) return IoError(figs.string() + ": cannot create: " + ec.message());
  std::vector<Figure> figures = StudyFigures(*cells);
  for (Figure& f : CurveFigures(curves)) figures.push_back(std::move(f));
  for (const Figure& f : figures) {
    const std::string stem = (figs / f.id).string();
    // The script names its outputs relative to itself, so the folder can be moved and the script re-run.
    const std::string tmp_svg = stem + ".svg.tmp", tmp_png = stem + ".png.tmp";
    Status s = WriteFileAtomic(stem + ".gp", GnuplotScript(f, f.id + ".svg", f.id + ".png"));
    if (!s.ok()) return s;
    const std::string run = stem + ".render.gp";  // the same script with this run's temporary outputs
    s = WriteFileAtomic(run, GnuplotScript(f, tmp_svg, tmp_png));
    if (!s.ok()) return s;
    s = RunGnuplot(run);
    fs::remove(run, ec);
    if (!s.ok()) return s;
    fs::rename(tmp_svg, stem + ".svg", ec);
    if (!ec) fs::rename(tmp_png, stem + ".png", ec);
    if (ec) return IoError(stem + ": cannot move the rendered figure into place: " + ec.message());
  }
  if (cells->empty()) context.notes.push_back("No finished experiment yet: nothing to draw.");
  Status s = WriteFileAtomic((out / "results.json").string(), cells_json);
  if (s.ok()) s = WriteFileAtomic((out / "cells.csv").string(), CellsCsv(*cells));
  if (s.ok()) {
    const nlohmann::json rows = nlohmann::json::parse(cells_json);  // ParseCells accepted it
    s = WriteFileAtomic((out / "index.html").string(), PageHtml(ReportData(rows, figures, context, /*files=*/true)));
  }
  if (!s.ok()) return s;
  ReportFiles files;
  files.index = (out / "index.html").string();
  files.figures = static_cast<int>(figures.size());
  files.cells = static_cast<int>(cells->size());
  return files;
}

}  // namespace cadenza
