"""BFCL (Berkeley Function Calling Leaderboard) data, AST scoring and overview aggregates."""
