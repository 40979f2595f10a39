"""Records management (§6): retention, holds, disposition, key rotation, exports and heads."""
