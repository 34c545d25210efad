"""Server backends: one module per server kind (Ollama today)."""
