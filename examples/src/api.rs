//! The `paginated-api` HTTP service.
