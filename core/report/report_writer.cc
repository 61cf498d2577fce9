#include "core/report/report_writer.h"

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
#include "core/threads.h"

extern char** environ;

namespace cadenza {
namespace fs = std::filesystem;

namespace {

// Starts `gnuplot script`; its stderr goes to ours (gnuplot names the line of any error).
StatusOr<pid_t> SpawnGnuplot(const std::string& script) {
  pid_t pid = 0;
  const char* argv[] = {"gnuplot", script.c_str(), nullptr};
  const int rc = posix_spawnp(&pid, "gnuplot", nullptr, nullptr, const_cast<char* const*>(argv), environ);
  if (rc != 0) {
    return FailedPrecondition(std::string("gnuplot: cannot run it (") + std::strerror(rc) +
                              "): install gnuplot-nox (scripts/install-deps.sh does)");
  }
  return pid;
}

Status WaitGnuplot(pid_t pid, const std::string& script) {
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
  // Each figure: its script (outputs named relative to itself, so the folder can be moved and the script re-run),
  // and the same script drawing to temporary files, rendered by gnuplot processes, one per core at a time.
  struct Render {
    std::string stem, script;
    pid_t pid = -1;
  };
  std::vector<Render> renders;
  for (const Figure& f : figures) {
    Render r;
    r.stem = (figs / f.id).string();
    r.script = r.stem + ".render.gp";
    Status s = WriteFileAtomic(r.stem + ".gp", GnuplotScript(f, f.id + ".svg", f.id + ".png"));
    if (s.ok()) s = WriteFileAtomic(r.script, GnuplotScript(f, r.stem + ".svg.tmp", r.stem + ".png.tmp"));
    if (!s.ok()) return s;
    renders.push_back(std::move(r));
  }
  const size_t parallel = static_cast<size_t>(UsableCpus());
  Status rendered;
  for (size_t next = 0, done = 0; done < renders.size();) {
    while (rendered.ok() && next < renders.size() && next - done < parallel) {  // start up to `parallel`
      auto pid = SpawnGnuplot(renders[next].script);
      if (!pid.ok()) rendered = pid.status();
      else renders[next++].pid = *pid;
    }
    if (done == next) break;  // nothing running (a spawn failed)
    Render& r = renders[done++];
    Status s = WaitGnuplot(r.pid, r.script);
    fs::remove(r.script, ec);
    if (s.ok() && rendered.ok()) {
      fs::rename(r.stem + ".svg.tmp", r.stem + ".svg", ec);
      if (!ec) fs::rename(r.stem + ".png.tmp", r.stem + ".png", ec);
      if (ec) s = IoError(r.stem + ": cannot move the rendered figure into place: " + ec.message());
    }
    if (rendered.ok() && !s.ok()) rendered = s;
  }
  if (!rendered.ok()) return rendered;
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
