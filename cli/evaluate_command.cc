// `cadenza evaluate` options and run (torch-free; cadenza-model adds model embeddings through the request).
#include "cli/evaluate_command.h"

#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/fail.h"
#include "core/file_util.h"
#include "core/threads.h"
#include "storage/manifest.h"
#include "storage/reference_pieces.h"

namespace cadenza {

CLI::App* AddEvaluateCommand(CLI::App& app, const std::function<int(const EvaluateArgs&)>& run, int* exit_code) {
  auto a = std::make_shared<EvaluateArgs>();
  EvaluateRequest& r = a->request;
  auto* cmd = app.add_subcommand(
      "evaluate",
      "Structure (self-similarity), melodic and rhythmic metrics of MIDI files, optionally compared with a dataset split "
      "(mgeval overlap/KL). Exit code 0: all inputs evaluated; 3: report written, some inputs skipped (listed in it); "
      "1: fatal error; 2: usage. Metrics: docs/evaluation.md");
  cmd->add_option("inputs", r.inputs, "MIDI files and/or folders (searched recursively for .mid/.midi)")->required();
  cmd->add_option("--out", a->out, "Report file to write (JSON, written atomically)")->required();
  cmd->add_option("--reference", a->reference, "Dataset folder (from `cadenza ingest`) to compare against");
  cmd->add_option("--split", a->split, "Split of the --reference dataset: train, val or test")->capture_default_str();
  cmd->add_option("--ssm-png", r.ssm_png_dir, "Folder for one self-similarity heatmap PNG per piece (bar grid drawn)");
  cmd->add_option("--segment", a->segment, "Segment unit of the self-similarity matrix: bar or beat")->capture_default_str()->check(CLI::IsMember({"bar", "beat"}));
  cmd->add_option("--checkpoint", a->checkpoint,
                  "Use this model's final hidden states, averaged over each bar/beat, as the SSM's segment embeddings "
                  "(instead of pitch-class + onset vectors); melody and rhythm metrics are unchanged")
      ->check(CLI::ExistingFile);
  cmd->add_option("--threshold", r.options.structure.repetition_threshold, "Similarity at or above which two segments count as a repetition")->capture_default_str()->check(CLI::Range(-1.0, 1.0));
  cmd->add_option("--max-segments", r.options.max_segments, "Pieces with more SSM segments get no structure scores (the SSM needs n^2 memory)")->capture_default_str()->check(CLI::Range(2, 100000));
  cmd->add_option("--max-ssm-mb", a->max_ssm_mb,
                  "Memory budget of one piece's structure scores: --max-segments is refused when the self-similarity "
                  "matrix of that many segments and its path sums (12 bytes per cell, n^2 cells) would need more MiB")
      ->capture_default_str()->check(CLI::Range(1.0, 1e9));
  r.jobs = UsableCpus();
  cmd->add_option("--jobs,-j", r.jobs, "Worker threads (default: the CPUs this process may use)")->capture_default_str()->check(CLI::Range(1, 256));
  cmd->add_flag("--quiet,-q", a->quiet, "No progress lines on stderr");
  cmd->callback([a, run, exit_code] { *exit_code = run(*a); });
  return cmd;
}

int RunEvaluate(EvaluateArgs args) {
  EvaluateRequest& request = args.request;
  request.options.unit = args.segment == "beat" ? SegmentUnit::kBeat : SegmentUnit::kBar;
  if (request.options.unit == SegmentUnit::kBeat) {
    for (auto& range : request.options.structure.si_ranges) range = {range.first * 4, range.second * 4};
    request.options.structure.si_length_step = 4;  // segments of whole 4/4 bars: a quarter of the work
  }
  request.progress = !args.quiet;
  // Refused before any work: an allowed --max-segments must not reach out-of-memory on a long piece (at every
  // worker thread, one piece's matrices at a time).
  const double n = request.options.max_segments;
  const double need_mb = kSsmBytesPerCell * n * n / (1024.0 * 1024.0);
  if (need_mb > args.max_ssm_mb) {
    const int64_t fits = static_cast<int64_t>(std::sqrt(args.max_ssm_mb * 1024.0 * 1024.0 / kSsmBytesPerCell));
    char text[320];
    std::snprintf(text, sizeof text,
                  "--max-segments %d: the self-similarity matrix of %d segments and its path sums would need %.0f MiB, "
                  "more than --max-ssm-mb %g (lower --max-segments to %lld or less, or raise --max-ssm-mb)",
                  request.options.max_segments, request.options.max_segments, need_mb, args.max_ssm_mb, (long long)fits);
    return Fail(InvalidArgument(text));
  }
  // The reference split, opened before any work so that a typo fails fast; --split is checked even without one.
  std::unique_ptr<ReferencePieces> reference;
  if (!args.reference.empty()) {
    auto opened = OpenReferenceSplit(args.reference, args.split);
    if (!opened.ok()) return Fail(opened.status());
    reference = std::move(opened).value();
    request.reference = reference.get();
  } else if (auto split = ParseSplit(args.split); !split.ok()) {
    return Fail(InvalidArgument("--split: " + split.status().message()));
  }
  auto report = RunEvaluation(request);
  if (!report.ok()) return Fail(report.status());
  Status s = WriteFileAtomic(args.out, ReportJson(*report));
  if (!s.ok()) return Fail(s);
  for (const SkippedInput& sk : report->skipped) std::cerr << "cadenza: skipped " << sk.input << ": " << sk.reason << "\n";
  std::cout << "evaluated " << report->pieces.size() << " pieces (" << report->skipped.size() << " skipped)";
  if (report->has_reference) {
    std::cout << " against " << report->reference.size() << " " << report->reference_split << " pieces of "
              << report->reference_dataset;
  }
  if (request.segment_embeddings) std::cout << " with " << report->embeddings << " as segment embeddings";
  std::cout << " in " << report->seconds << " s -> " << args.out << "\n";
  if (report->pieces.empty()) {
    return Fail(InvalidArgument("no input could be evaluated (see \"skipped\" in " + args.out + ")"));
  }
  return report->skipped.empty() ? 0 : kEvaluateExitPartial;
}

}  // namespace cadenza
