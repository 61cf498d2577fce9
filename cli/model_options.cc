// The options of `cadenza train`, `generate` and `params`, shared by both binaries (no torch here).
#include "cli/model_options.h"

#include <memory>

namespace cadenza {

void AddModelCommands(CLI::App& app, const ModelCommandHandlers& run, int* exit_code) {
  auto train_args = std::make_shared<TrainArgs>();
  auto* train = app.add_subcommand("train", "Train one model (attention RNN or Transformer) from an experiment YAML");
  train->add_option("experiment", train_args->experiment, "Experiment file (see configs/experiments/)")->required()->check(CLI::ExistingFile);
  train->add_option("overrides", train_args->overrides,
                    "key=value overrides of the experiment (train.steps=300 model.dropout=0.2), validated like the file's keys; "
                    "the run's config.yaml records the result");
  train->add_flag("--resume", train_args->resume, "Continue the run in the experiment's `out` from checkpoints/latest.pt");
  train->add_option("--threads", train_args->threads, "LibTorch threads (overrides train.threads; 0 = the CPUs this process may use, shared by the ranks on its node)")->check(CLI::Range(0, 256));
  train->add_option("--stop-after", train_args->stop_after, "Checkpoint and stop after N steps in this process (resume later)")->check(CLI::NonNegativeNumber);
  train->add_flag("--quiet,-q", train_args->quiet, "No progress output");
  train->footer("Every experiment key with its type, default, allowed values and meaning: `cadenza config keys`.");
  train->callback([train_args, run, exit_code] { *exit_code = run.train(*train_args); });

  auto gen = std::make_shared<GenerateArgs>();
  auto* generate = app.add_subcommand("generate", "Sample new music from a checkpoint as MIDI (and WAV) files");
  generate->add_option("checkpoint,--checkpoint", gen->checkpoint, "A checkpoint written by `cadenza train` (checkpoints/best.pt)")->required()->check(CLI::ExistingFile);
  generate->add_option("--out", gen->out, "Folder for sample-NNN.mid/.json/.wav")->required();
  generate->add_option("--count,-n", gen->o.count, "Samples, generated together as one batch")->capture_default_str()->check(CLI::Range(1, 1024));
  generate->add_option("--bars", gen->o.bars, "Stop each sample after this many new bars (0 = only --max-tokens)")->capture_default_str()->check(CLI::NonNegativeNumber);
  generate->add_option("--tokens,--max-tokens", gen->o.max_new_tokens, "Hard cap on new tokens per sample")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  generate->add_option("--temperature", gen->o.temperature, "Softmax temperature (0 = greedy)")->capture_default_str()->check(CLI::Range(0.0, 10.0));
  generate->add_option("--top-k", gen->o.top_k, "Sample among the k most likely tokens (0 = all)")->capture_default_str()->check(CLI::NonNegativeNumber);
  generate->add_option("--top-p", gen->o.top_p, "Nucleus sampling mass (1 = off)")->capture_default_str()->check(CLI::Range(0.01, 1.0));
  generate->add_option("--seed", gen->o.seed, "Same seed, checkpoint and options: the same music")->capture_default_str();
  generate->add_option("--primer", gen->primer, "Continue the first --primer-bars bars of this MIDI file")->check(CLI::ExistingFile);
  generate->add_option("--primer-bars", gen->primer_bars, "Bars of the primer to keep")->capture_default_str()->check(CLI::Range(1, 10000));
  generate->add_flag("--wav", gen->wav, "Also render each sample to WAV with FluidSynth");
  generate->add_option("--soundfont", gen->soundfont, "SoundFont for --wav (default: Debian's FluidR3_GM.sf2 or $CADENZA_SOUNDFONT)");
  generate->add_option("--threads", gen->threads,
                       "LibTorch threads (0 = the CPUs this process may use, its affinity mask and CPU quota, less those other "
                       "processes keep busy: looked at for 50 ms at the start)")->capture_default_str()->check(CLI::Range(0, 256));
  generate->callback([gen, run, exit_code] { *exit_code = run.generate(*gen); });

  auto pr = std::make_shared<ProbeArgs>();
  auto* probe = app.add_subcommand(
      "probe",
      "Measure forward latency, per-token generation latency and peak tensor memory against context length\n"
      "(the paper's latency-vs-length and memory-vs-size figures); one CSV row per model and length");
  probe->add_option("--checkpoint", pr->checkpoints, "Checkpoint to probe (repeatable)")->check(CLI::ExistingFile);
  probe->add_option("--model", pr->models, "Model config to probe with initial weights (repeatable; configs/models/*.yaml)")->check(CLI::ExistingFile);
  probe->add_option("--lengths", pr->lengths, "Context lengths in tokens, comma-separated")->delimiter(',')->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  probe->add_option("--out", pr->out, "CSV file to write (atomically)")->required();
  probe->add_option("--batch", pr->batch, "Sequences per forward and per step")->capture_default_str()->check(CLI::Range(1, 1024));
  probe->add_option("--warmup", pr->warmup, "Untimed runs before the timed ones")->capture_default_str()->check(CLI::Range(0, 100));
  probe->add_option("--repeats", pr->repeats, "Timed runs per measurement; the median is reported")->capture_default_str()->check(CLI::Range(1, 1000));
  probe->add_option("--threads", pr->threads, "LibTorch threads (0 = the CPUs this process may use: its affinity mask and CPU quota)")->capture_default_str()->check(CLI::Range(0, 256));
  probe->add_option("--seed", pr->seed, "Seed of the random input tokens")->capture_default_str();
  probe->add_flag("--quiet,-q", pr->quiet, "No progress output");
  probe->callback([pr, run, exit_code, probe] {
    if (pr->checkpoints.empty() && pr->models.empty()) {
      throw CLI::ValidationError("probe", "give at least one --checkpoint or --model");
    }
    *exit_code = run.probe(*pr);
  });

  auto sc = std::make_shared<ScoreArgs>();
  auto* score = app.add_subcommand(
      "score",
      "Score a trained checkpoint on held-out music: negative log-likelihood per token and per bar over a whole\n"
      "dataset split, in windows of seq_len + 1 tokens starting on bar lines (the checkpoint's train.seq_len), as\n"
      "validation computes it: eval mode (no dropout), no gradients, padding ignored, deterministic.\n"
      "NLL is in nats; perplexity = exp(NLL/token). By default the windows tile each piece (--windows tiled: every\n"
      "token scored about once); --windows every_bar puts one at every bar line, as training validation does.\n"
      "Another corpus (ingested with the same vocabulary) measures cross-corpus generalisation.\n"
      "Prints one table row per split; --out also writes a JSON report (atomically)");
  score->add_option("checkpoint,--checkpoint", sc->checkpoint, "A checkpoint written by training (checkpoints/best.pt)")->required()->check(CLI::ExistingFile);
  score->add_option("--dataset", sc->dataset, "Dataset folder written by `cadenza ingest`")->required()->check(CLI::ExistingDirectory);
  score->add_option("--split", sc->splits, "Split(s) to score, comma-separated: train, val, test")->delimiter(',')->capture_default_str()->check(CLI::IsMember({"train", "val", "test"}));
  score->add_option("--out", sc->out, "Also write the JSON report here (docs/models.md: Scoring)");
  score->add_option("--windows", sc->windows,
                    "tiled: windows that tile each piece, every token scored about once (fast); every_bar: a window "
                    "at every bar line, as training validation reads them (about seq_len / bar length times slower)")
      ->capture_default_str()->check(CLI::IsMember({"tiled", "every_bar"}));
  score->add_option("--threads", sc->threads, "LibTorch threads (0 = the CPUs this process may use: its affinity mask and CPU quota)")->capture_default_str()->check(CLI::Range(0, 256));
  score->callback([sc, run, exit_code] { *exit_code = run.score(*sc); });

  auto files = std::make_shared<std::vector<std::string>>();
  auto* params = app.add_subcommand("params", "Print the parameter count of model configs (to match model sizes)");
  params->add_option("model_yaml", *files, "Model config files (configs/models/*.yaml)")->required()->check(CLI::ExistingFile);
  params->callback([files, run, exit_code] { *exit_code = run.params(*files); });
}

}  // namespace cadenza
