"""django-eventstream as its README sets it up, a peer measured beside pgsse.

A small Django project of its own on the bench database: ``django_eventstream`` with
``DjangoModelStorage`` (events stored, ``Last-Event-ID`` replayed), a stream per channel at
``/events/<channel>/``, and, bench-only, ``POST /publish/<channel>/`` calling ``send_event``:
in one process django-eventstream fans out in memory, so events must be sent from inside the
server process (Redis or a GRIP proxy would be needed for more).
"""
