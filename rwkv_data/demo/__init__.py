"""The demo corpus that ships with rwkv-data: short original texts written by this project."""
