"""The HTTP routes, one module per protocol: text-generation-inference, OpenAI, Ollama and llama.cpp."""
