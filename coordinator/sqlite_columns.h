// Column readers of a SQLite result row, shared by the store (writes and recovery) and the result queries.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>

namespace cadenza::coord {

// The text of column `col` (empty for NULL).
inline std::string ColumnText(sqlite3_stmt* s, int col) {
  const unsigned char* p = sqlite3_column_text(s, col);
  return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s, col)) : std::string();
}
inline int64_t ColumnInt(sqlite3_stmt* s, int col) { return sqlite3_column_int64(s, col); }

}  // namespace cadenza::coord
