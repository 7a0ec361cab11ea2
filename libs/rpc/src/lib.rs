//! gRPC conventions shared by every service's api layer: errors with google.rpc details, paging, field masks, timestamps, money, request ids.
