"""The satisfaction loop (满意度闭环): low survey answers, negative reviews and complaints become
improvement items per department that staff assign, act on and close; department satisfaction
alerts; the loop's dashboard."""
