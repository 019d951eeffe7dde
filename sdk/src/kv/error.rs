//! FoundationDB errors: numeric codes and the client's retry classification.
//!
//! Both backends report failures as [`FdbError`] so that the retry loop, the
//! record store and applications make the same decisions on FoundationDB and
//! on the embedded engine.

use std::fmt;

/// Result of a key-value operation.
pub type FdbResult<T> = Result<T, FdbError>;

/// An error carrying one of FoundationDB's numeric error codes.
///
/// The classification methods mirror `fdb_error_predicate`: use them rather
/// than matching codes, so that retry decisions stay identical to FoundationDB's.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FdbError {
    code: i32,
}

/// FoundationDB's error codes that this crate produces or interprets.
pub mod code {
    pub const OPERATION_FAILED: i32 = 1000;
    pub const TIMED_OUT: i32 = 1004;
    pub const TRANSACTION_TOO_OLD: i32 = 1007;
    pub const FUTURE_VERSION: i32 = 1009;
    pub const NOT_COMMITTED: i32 = 1020;
    pub const COMMIT_UNKNOWN_RESULT: i32 = 1021;
    pub const TRANSACTION_CANCELLED: i32 = 1025;
    pub const TRANSACTION_TIMED_OUT: i32 = 1031;
    pub const ACCESSED_UNREADABLE: i32 = 1036;
    pub const PROCESS_BEHIND: i32 = 1037;
    pub const DATABASE_LOCKED: i32 = 1038;
    pub const CLUSTER_VERSION_CHANGED: i32 = 1039;
    pub const COMMIT_PROXY_MEMORY_LIMIT_EXCEEDED: i32 = 1042;
    pub const BATCH_TRANSACTION_THROTTLED: i32 = 1051;
    pub const GRV_PROXY_MEMORY_LIMIT_EXCEEDED: i32 = 1078;
    pub const TAG_THROTTLED: i32 = 1213;
    pub const PROXY_TAG_THROTTLED: i32 = 1223;
    pub const TRANSACTION_THROTTLED_HOT_SHARD: i32 = 1235;
    pub const IO_ERROR: i32 = 1510;
    pub const NO_CLUSTER_FILE_FOUND: i32 = 1515;
    pub const CLIENT_INVALID_OPERATION: i32 = 2000;
    pub const KEY_OUTSIDE_LEGAL_RANGE: i32 = 2004;
    pub const INVERTED_RANGE: i32 = 2005;
    pub const INVALID_OPTION_VALUE: i32 = 2006;
    pub const INVALID_MUTATION_TYPE: i32 = 2018;
    pub const USED_DURING_COMMIT: i32 = 2017;
    pub const TRANSACTION_TOO_LARGE: i32 = 2101;
    pub const KEY_TOO_LARGE: i32 = 2102;
    pub const VALUE_TOO_LARGE: i32 = 2103;
    pub const INTERNAL_ERROR: i32 = 4100;
}

impl FdbError {
    /// Wraps a FoundationDB error code.
    pub const fn from_code(code: i32) -> Self {
        FdbError { code }
    }

    /// The numeric FoundationDB error code.
    pub const fn code(self) -> i32 {
        self.code
    }

    /// The error's name as FoundationDB spells it (`"not_committed"`, ...).
    pub fn name(self) -> &'static str {
        use code::*;
        match self.code {
            OPERATION_FAILED => "operation_failed",
            TIMED_OUT => "timed_out",
            TRANSACTION_TOO_OLD => "transaction_too_old",
            FUTURE_VERSION => "future_version",
            NOT_COMMITTED => "not_committed",
            COMMIT_UNKNOWN_RESULT => "commit_unknown_result",
            TRANSACTION_CANCELLED => "transaction_cancelled",
            TRANSACTION_TIMED_OUT => "transaction_timed_out",
            ACCESSED_UNREADABLE => "accessed_unreadable",
            PROCESS_BEHIND => "process_behind",
            DATABASE_LOCKED => "database_locked",
            CLUSTER_VERSION_CHANGED => "cluster_version_changed",
            COMMIT_PROXY_MEMORY_LIMIT_EXCEEDED => "commit_proxy_memory_limit_exceeded",
            BATCH_TRANSACTION_THROTTLED => "batch_transaction_throttled",
            GRV_PROXY_MEMORY_LIMIT_EXCEEDED => "grv_proxy_memory_limit_exceeded",
            TAG_THROTTLED => "tag_throttled",
            PROXY_TAG_THROTTLED => "proxy_tag_throttled",
            TRANSACTION_THROTTLED_HOT_SHARD => "transaction_throttled_hot_shard",
            IO_ERROR => "io_error",
            CLIENT_INVALID_OPERATION => "client_invalid_operation",
            KEY_OUTSIDE_LEGAL_RANGE => "key_outside_legal_range",
            INVERTED_RANGE => "inverted_range",
            INVALID_OPTION_VALUE => "invalid_option_value",
            INVALID_MUTATION_TYPE => "invalid_mutation_type",
            USED_DURING_COMMIT => "used_during_commit",
            TRANSACTION_TOO_LARGE => "transaction_too_large",
            KEY_TOO_LARGE => "key_too_large",
            VALUE_TOO_LARGE => "value_too_large",
            NO_CLUSTER_FILE_FOUND => "no_cluster_file_found",
            INTERNAL_ERROR => "internal_error",
            _ => "unknown_error",
        }
    }

    /// The transaction may have committed even though the commit reported an error
    /// (FoundationDB's `maybe_committed` predicate).
    pub fn is_maybe_committed(self) -> bool {
        matches!(
            self.code,
            code::COMMIT_UNKNOWN_RESULT | code::CLUSTER_VERSION_CHANGED
        )
    }

    /// The transaction certainly did not commit and may be retried
    /// (FoundationDB's `retryable_not_committed` predicate).
    pub fn is_retryable_not_committed(self) -> bool {
        matches!(
            self.code,
            code::NOT_COMMITTED
                | code::TRANSACTION_TOO_OLD
                | code::FUTURE_VERSION
                | code::PROCESS_BEHIND
                | code::DATABASE_LOCKED
                | code::COMMIT_PROXY_MEMORY_LIMIT_EXCEEDED
                | code::BATCH_TRANSACTION_THROTTLED
                | code::GRV_PROXY_MEMORY_LIMIT_EXCEEDED
                | code::TAG_THROTTLED
                | code::PROXY_TAG_THROTTLED
                | code::TRANSACTION_THROTTLED_HOT_SHARD
        )
    }

    /// `on_error` would retry the transaction (FoundationDB's `retryable` predicate).
    pub fn is_retryable(self) -> bool {
        self.is_maybe_committed() || self.is_retryable_not_committed()
    }
}

impl fmt::Debug for FdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FdbError({} {})", self.code, self.name())
    }
}

impl fmt::Display for FdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FoundationDB error {} ({})", self.code, self.name())
    }
}

impl std::error::Error for FdbError {}

/// An application error that may wrap an [`FdbError`].
///
/// The retry loop needs to see FoundationDB errors through the application's own
/// error type, so that a conflict surfacing inside user code is still retried.
pub trait RetryableError: From<FdbError> {
    /// The FoundationDB error inside, if this error is one.
    fn fdb_error(&self) -> Option<FdbError>;
}

impl RetryableError for FdbError {
    fn fdb_error(&self) -> Option<FdbError> {
        Some(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_matches_foundationdb_predicates() {
        let unknown = FdbError::from_code(code::COMMIT_UNKNOWN_RESULT);
        assert!(unknown.is_maybe_committed() && unknown.is_retryable());
        assert!(!unknown.is_retryable_not_committed());
        for c in [
            code::NOT_COMMITTED,
            code::TRANSACTION_TOO_OLD,
            code::FUTURE_VERSION,
        ] {
            let e = FdbError::from_code(c);
            assert!(e.is_retryable_not_committed() && e.is_retryable() && !e.is_maybe_committed());
        }
        for c in [
            code::TRANSACTION_TOO_LARGE,
            code::KEY_TOO_LARGE,
            code::TRANSACTION_TIMED_OUT,
            code::TRANSACTION_CANCELLED,
        ] {
            assert!(!FdbError::from_code(c).is_retryable(), "{c}");
        }
        assert_eq!(
            FdbError::from_code(1020).to_string(),
            "FoundationDB error 1020 (not_committed)"
        );
    }

    /// Every code this crate names, with FoundationDB's number and name for it
    /// (`flow/include/flow/error_definitions.h`): a wrong number would make the two
    /// backends report, and the retry loop judge, different errors.
    #[test]
    fn codes_and_names_are_foundationdbs() {
        let table = [
            (code::OPERATION_FAILED, 1000, "operation_failed"),
            (code::TIMED_OUT, 1004, "timed_out"),
            (code::TRANSACTION_TOO_OLD, 1007, "transaction_too_old"),
            (code::FUTURE_VERSION, 1009, "future_version"),
            (code::NOT_COMMITTED, 1020, "not_committed"),
            (code::COMMIT_UNKNOWN_RESULT, 1021, "commit_unknown_result"),
            (code::TRANSACTION_CANCELLED, 1025, "transaction_cancelled"),
            (code::TRANSACTION_TIMED_OUT, 1031, "transaction_timed_out"),
            (code::ACCESSED_UNREADABLE, 1036, "accessed_unreadable"),
            (code::PROCESS_BEHIND, 1037, "process_behind"),
            (code::DATABASE_LOCKED, 1038, "database_locked"),
            (
                code::CLUSTER_VERSION_CHANGED,
                1039,
                "cluster_version_changed",
            ),
            (
                code::COMMIT_PROXY_MEMORY_LIMIT_EXCEEDED,
                1042,
                "commit_proxy_memory_limit_exceeded",
            ),
            (
                code::BATCH_TRANSACTION_THROTTLED,
                1051,
                "batch_transaction_throttled",
            ),
            (
                code::GRV_PROXY_MEMORY_LIMIT_EXCEEDED,
                1078,
                "grv_proxy_memory_limit_exceeded",
            ),
            (code::TAG_THROTTLED, 1213, "tag_throttled"),
            (code::PROXY_TAG_THROTTLED, 1223, "proxy_tag_throttled"),
            (
                code::TRANSACTION_THROTTLED_HOT_SHARD,
                1235,
                "transaction_throttled_hot_shard",
            ),
            (code::IO_ERROR, 1510, "io_error"),
            (code::NO_CLUSTER_FILE_FOUND, 1515, "no_cluster_file_found"),
            (
                code::CLIENT_INVALID_OPERATION,
                2000,
                "client_invalid_operation",
            ),
            (
                code::KEY_OUTSIDE_LEGAL_RANGE,
                2004,
                "key_outside_legal_range",
            ),
            (code::INVERTED_RANGE, 2005, "inverted_range"),
            (code::INVALID_OPTION_VALUE, 2006, "invalid_option_value"),
            (code::USED_DURING_COMMIT, 2017, "used_during_commit"),
            (code::INVALID_MUTATION_TYPE, 2018, "invalid_mutation_type"),
            (code::TRANSACTION_TOO_LARGE, 2101, "transaction_too_large"),
            (code::KEY_TOO_LARGE, 2102, "key_too_large"),
            (code::VALUE_TOO_LARGE, 2103, "value_too_large"),
            (code::INTERNAL_ERROR, 4100, "internal_error"),
        ];
        for (constant, number, name) in table {
            assert_eq!(constant, number, "{name}");
            assert_eq!(FdbError::from_code(number).name(), name, "{number}");
        }
        // Codes FoundationDB gives other meanings, which this crate once misnamed.
        assert_eq!(FdbError::from_code(2016).name(), "unknown_error");
        assert_eq!(FdbError::from_code(2104).name(), "unknown_error");
    }

    /// FoundationDB's `retryable_not_committed` list (`fdb_c.cpp`): throttling by a
    /// proxy or a hot shard is retried like any other throttling.
    #[test]
    fn every_throttle_and_memory_limit_is_retried_as_not_committed() {
        for c in [
            code::DATABASE_LOCKED,
            code::PROCESS_BEHIND,
            code::COMMIT_PROXY_MEMORY_LIMIT_EXCEEDED,
            code::GRV_PROXY_MEMORY_LIMIT_EXCEEDED,
            code::BATCH_TRANSACTION_THROTTLED,
            code::TAG_THROTTLED,
            code::PROXY_TAG_THROTTLED,
            code::TRANSACTION_THROTTLED_HOT_SHARD,
        ] {
            let e = FdbError::from_code(c);
            assert!(e.is_retryable_not_committed() && e.is_retryable(), "{c}");
            assert!(!e.is_maybe_committed(), "{c}");
        }
        for c in [
            code::NO_CLUSTER_FILE_FOUND,
            code::INVALID_MUTATION_TYPE,
            code::IO_ERROR,
        ] {
            assert!(!FdbError::from_code(c).is_retryable(), "{c}");
        }
    }
}
