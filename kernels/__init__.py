"""rwkv_data.kernels: the WKV7 recurrence (reference, chunked, CUDA)."""
