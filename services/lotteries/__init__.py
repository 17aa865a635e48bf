"""Lotteries (抽奖): entries within limits, a draw at a set time from a committed seed, prizes."""
