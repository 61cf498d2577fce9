// The study's comparison as figures and a page: sweep cells (mean, sd, 95% CI over seeds) -> figure data ->
// gnuplot scripts (SVG and PNG from one plot description) and a self-contained index.html. Pure and torch-free:
// `cadenza report` runs it on `cadenza results --sweep N` cells; the figures need only the cells' numbers.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace cadenza {

struct CellStat {
  double mean = 0, sd = 0, ci95 = 0;
  int n = 0;
};

// One sweep cell: its axes (model, model_family, parameters, dataset, dataset_fraction, ...), the runs it
// aggregates, and every metric's statistics over them.
struct ReportCell {
  std::map<std::string, std::string> axes;
  int runs = 0;
  std::map<std::string, CellStat> metrics;
  // The model's label in figures and tables: axes "model", else "model_family".
  std::string Model() const;
  const CellStat* Metric(const std::string& name) const;
};

// Parses the JSON text of `cadenza results --sweep N --format json` (a list of objects: axis columns, n,
// train_tokens, <metric>_{mean,sd,ci95,n}). An error names the entry and the field that is wrong.
StatusOr<std::vector<ReportCell>> ParseCells(const std::string& json_text, const std::string& path_for_errors);

struct Series {
  std::string label;                 // model (and dataset when a figure spans several)
  std::vector<double> x, y, lo, hi;  // lo/hi: mean -/+ 95% CI (equal to y when n == 1)
};

struct Figure {
  std::string id;                    // file stem: quality-test-nll-nottingham
  std::string title, xlabel, ylabel;
  bool logx = false;
  std::vector<Series> series;
  std::vector<std::string> missing;  // what the figure lacks, named ("lstm: no probe at length 1024")
};

// The study's figures from the cells: per dataset, test and val NLL/token against the dataset fraction; forward
// and per-token generation latency, training, inference and generation-state memory against the context length
// (probe rows, batch 1; a model's cell with the largest fraction, as speed and memory do not depend on the data);
// a series per model and value of any other axis that varies (train.lr in a learning-rate search);
// sample structure and pitch/rhythm metrics against the fraction. Figures without any point are left out.
std::vector<Figure> StudyFigures(const std::vector<ReportCell>& cells);

// One run's training curves, read from its metrics.csv, and the cell it belongs to.
struct RunCurves {
  std::string model, dataset;
  double fraction = 1.0;
  std::map<std::string, std::string> axes;  // the run's sweep axes: those that vary name the series
  std::map<std::string, std::map<int64_t, double>> tags;  // tag -> step -> value (a repeated step keeps the last)
};

// A run's curves, not yet read: its model (axes "model", else the family), dataset and fraction (axes
// "dataset_fraction", else 1).
RunCurves RunCurvesOf(const std::map<std::string, std::string>& axes, const std::string& model_family, const std::string& dataset);

// Parses metrics.csv text ("step,tag,value" lines after the header) into curves->tags; a malformed line is an
// error naming the file and the line.
Status ParseMetricsCsv(const std::string& text, const std::string& path, RunCurves* curves);

// Per dataset, validation NLL and the structure of samples drawn at each validation (sample/structureness,
// sample/repetition) against the training step: one series per model (and value of any other varying axis but
// the seed, e.g. train.lr), the runs of its largest fraction, mean
// over them at each step with the 95% CI (Student t). Figures without any point are left out.
std::vector<Figure> CurveFigures(const std::vector<RunCurves>& runs);

// One gnuplot script that draws `figure` as SVG to `svg` and as PNG to `png` (the same plot, replotted): mean
// lines with points and shaded 95% CI bands, one colour per series, data inline (it reads no other file).
std::string GnuplotScript(const Figure& figure, const std::string& svg, const std::string& png);

// A picture beside the figures (an SSM heatmap): `file` relative to the report folder.
struct ReportImage {
  std::string title, file, caption;
};

struct ReportContext {
  std::string title;                          // "sweep 3" / "results.json"
  std::vector<std::pair<std::string, std::string>> facts;  // shown in order: spec, commit, machine, generated at
  std::vector<std::string> notes;             // e.g. cells not finished yet
  std::vector<ReportImage> images;            // SSM heatmaps of samples and of the reference split
};

// A name as a file name stem: letters, digits, '-' and '.' kept, anything else '-' ("train.lr=0.002" -> "train.lr-0.002").
std::string FileSafe(const std::string& name);

// A sweep's axes in one line from its runs' axes: "model: lstm, transformer; seed: 1, 2" (each axis with its values
// in order; numbers in numeric order).
std::string AxesSummary(const std::vector<std::map<std::string, std::string>>& runs);

// One CSV field (RFC 4180): as is, or double-quoted with quotes doubled when it holds a comma, quote or newline.
// cells.csv and `cadenza results --format csv` both write through it.
std::string CsvField(const std::string& text);

// cells.csv: one row per cell, the axis columns then <metric>_{mean,sd,ci95,n} for every metric of any cell.
std::string CellsCsv(const std::vector<ReportCell>& cells);

}  // namespace cadenza
