// `cadenza-model`: the LibTorch half of the cadenza command. `cadenza train|generate|params` runs it with
// the same arguments, so that every other command starts without loading LibTorch (0.8 s, 170 MB).

#include <exception>
#include <string>

#include "cli/evaluate_command.h"
#include "cli/fail.h"
#include "cli/model_commands.h"
#include "core/build_info.h"
#include "core/threads.h"
#include "core/process_memory.h"

int main(int argc, char** argv) {
  cadenza::ReexecWithPassiveOpenMpWait(argv);  // `cadenza` sets it for its child; a direct start restarts once
  cadenza::SetCommandLine(argc, argv);  // recorded in each run's config.yaml
  // LibTorch's large tensors are otherwise mmap'd and page-faulted anew every step: 5x slower (PLATFORM.md).
  cadenza::KeepFreedMemory();
  CLI::App app{"cadenza-model: the model commands of cadenza (run them as `cadenza train|generate|params|probe|score`)"};
  app.require_subcommand(1);
  int exit_code = 2;
  cadenza::AddEvaluateCommand(app, cadenza::RunEvaluateWithModel, &exit_code);
  cadenza::AddModelCommands(app, {cadenza::RunTrain, cadenza::RunGenerate, cadenza::RunParams, cadenza::RunProbe, cadenza::RunScore}, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    // The commands' own boundary for what their torch-free facades (model_api.h, probe.h) let through: an error
    // line and exit 1 instead of std::terminate. Train() returns its exceptions as a Status already.
    std::string what = e.what();
    if (const size_t backtrace = what.find("\nException raised from"); backtrace != std::string::npos) what.resize(backtrace);
    return cadenza::Fail(cadenza::InternalError(what));
  }
  return exit_code;
}
