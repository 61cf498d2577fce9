// OpenReferenceSplit: a Dataset and the indices of one split's pieces behind the ReferencePieces interface.
#include "storage/reference_pieces.h"

#include <cstdint>
#include <utility>
#include <vector>

#include "storage/dataset.h"

namespace cadenza {
namespace {

class DatasetSplitPieces : public ReferencePieces {
 public:
  DatasetSplitPieces(std::unique_ptr<Dataset> dataset, std::string dir, std::string split, std::vector<int64_t> pieces)
      : dataset_(std::move(dataset)), dir_(std::move(dir)), split_(std::move(split)), pieces_(std::move(pieces)) {}

  std::string dataset() const override { return dir_; }
  std::string split() const override { return split_; }
  size_t size() const override { return pieces_.size(); }
  std::string Name(size_t i) const override { return dataset_->manifest().pieces[pieces_[i]].source; }
  // Dataset::ReadPiece is thread-safe (it serialises the shard reads).
  StatusOr<std::vector<int32_t>> Tokens(size_t i) const override {
    auto piece = dataset_->ReadPiece(pieces_[i]);
    if (!piece.ok()) return piece.status();
    return std::move(piece->tokens);
  }

 private:
  std::unique_ptr<Dataset> dataset_;
  std::string dir_;    // as the caller named it: the report shows it
  std::string split_;
  std::vector<int64_t> pieces_;  // indices into dataset_->manifest().pieces
};

}  // namespace

StatusOr<std::unique_ptr<ReferencePieces>> OpenReferenceSplit(const std::string& dataset_dir, const std::string& split) {
  // The split first, so a typo fails before the dataset is read.
  auto parsed = ParseSplit(split);
  if (!parsed.ok()) return InvalidArgument("--split: " + parsed.status().message());
  auto dataset = Dataset::Open(dataset_dir);
  if (!dataset.ok()) return dataset.status();
  std::vector<int64_t> pieces = (*dataset)->PiecesInSplit(*parsed);
  if (pieces.empty()) {
    return FailedPrecondition(dataset_dir + ": the dataset has no pieces in split \"" + split + "\"");
  }
  return std::unique_ptr<ReferencePieces>(
      new DatasetSplitPieces(std::move(dataset).value(), dataset_dir, split, std::move(pieces)));
}

}  // namespace cadenza
