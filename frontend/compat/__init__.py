"""The ecosystem's APIs on top of ours: OpenAI, Ollama and Hugging Face TEI shapes."""
