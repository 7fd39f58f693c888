"""The one lock every call into PDFium in this process holds.

PDFium is not thread-safe, not even across documents: two threads in it at once may crash the
process. A team server reads PDFs for several ingests and renders cited pages for browsers at the
same time, each on its own thread; each holds this lock around its PDFium calls alone (opening,
counting and closing pages, reading a text layer, rendering), never around the slow work between
them (recognizing text, finding tables with pdfminer). It is re-entrant, so a function that holds
it may call another that takes it.
"""

import threading

PDFIUM = threading.RLock()
