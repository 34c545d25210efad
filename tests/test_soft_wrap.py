from chimera_tui.ui.soft_wrap import soft_wrap


def test_wraps_between_words_and_keeps_the_column() -> None:
    text, col = soft_wrap(" alpha beta gamma", 0, 11)
    assert text == " alpha beta\ngamma" and col == 5
    text, col = soft_wrap(" delta", col, 11)
    assert text == " delta" and col == 11
    text, col = soft_wrap(" x", col, 11)
    assert text == "\nx" and col == 1


def test_newlines_reset_and_long_words_split() -> None:
    assert soft_wrap("ab\ncd", 3, 10) == ("ab\ncd", 2)
    assert soft_wrap("abcdefghij", 0, 4) == ("abcd\nefgh\nij", 2)


def test_tiny_width_is_left_alone() -> None:
    assert soft_wrap("abc def", 0, 2)[0] == "abc def"
