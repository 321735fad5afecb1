"""rwkv_data.model: the bundled RWKV-7 (x070) model and its checkpoint format."""
