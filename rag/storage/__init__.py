"""Where passages live: the vector store (Chroma) and the keyword index beside it."""
