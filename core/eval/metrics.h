// Melodic and rhythmic metrics of one piece on the grid (definitions, formulas and sources: docs/evaluation.md).
#pragma once

#include <vector>

#include "core/eval/piece.h"

namespace cadenza {

// Every value is NaN where it is undefined (too few notes, no pitched notes, fewer than two comparable bars).
struct MelodyMetrics {
  int melody_notes = 0;              // notes of the skyline melody
  double avg_pitch_deviation = 0;    // mean |p[k+1] - p[k]| over consecutive skyline notes, semitones
  double pitch_range = 0;            // max - min pitch of pitched (non-drum) notes
  double n_pitches_used = 0;         // distinct pitched MIDI pitches
  double pitch_class_entropy = 0;    // -sum p log2 p over the note-count pitch-class histogram, bits (0..log2 12)
  double scale_consistency = 0;      // max over 24 major/minor scales of the share of pitched notes in the scale
};

struct RhythmMetrics {
  int onsets = 0;                    // distinct onset steps (all notes, drums included)
  double syncopation = 0;            // Longuet-Higgins & Lee, summed over onsets, divided by the number of bars
  double syncopation_total = 0;      // the sum itself
  double syncopation_per_onset = 0;  // the sum divided by onsets
  double wnbd = 0;                   // weighted note-to-beat distance (Gomez et al. 2005)
  double on_beat_rate = 0;           // share of onsets on a beat of their bar's meter
  double on_grid_rate = 0;           // share of onsets on the finest level of the metrical hierarchy (sub-beat grid)
  double empty_beat_rate = 0;        // share of beats in which no note sounds
  double groove_consistency = 0;     // 1 - mean Hamming distance / bar length between onset patterns of adjacent bars
};

// Skyline melody: at every onset step of pitched notes, the highest pitch starting there.
std::vector<EvalNote> SkylineMelody(const EvalPiece& piece);
MelodyMetrics ComputeMelody(const EvalPiece& piece);
RhythmMetrics ComputeRhythm(const EvalPiece& piece);

// Metrical weight of every grid step of a bar of numerator/denominator (Longuet-Higgins & Lee): 0 at the downbeat,
// -k on level k of the hierarchy (bar -> beat groups -> beats -> halves ... down to sixteenths), and
// -(levels) on steps below the finest level (e.g. triplets in 4/4).
std::vector<int> MetricalWeights(int numerator, int denominator);
// Span in steps of each level of the hierarchy, coarsest (the bar) first.
std::vector<int> MetricalLevels(int numerator, int denominator);

// Normalised pitch-class histogram of pitched notes (counts, sum 1; zeros if none) and the 12-bin note-length
// histogram of mgeval (whole, half, quarter, 8th, 16th, dotted half .. dotted 16th, half/quarter/8th triplet).
std::vector<double> PitchClassHistogram(const EvalPiece& piece);
std::vector<double> NoteLengthHistogram(const EvalPiece& piece);

}  // namespace cadenza
