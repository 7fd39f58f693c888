"""Answering: passages found for a question, the prompt, the answer and its checked citations."""
