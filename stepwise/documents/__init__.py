"""Documents: reading them, splitting lines into sentences, and sentences into pages."""

from stepwise.documents.pages import Document, Page, Sentence, paginate, read_lines
from stepwise.documents.sentences import language_family, split_sentences

__all__ = ["Document", "Page", "Sentence", "language_family", "paginate", "read_lines",
           "split_sentences"]
