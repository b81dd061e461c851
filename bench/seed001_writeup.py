"""Seed 001's pure-Python network, as the write-up gives it: the peer the engine is held to.

The write-up's code, retyped with its lost spaces and newlines put back and its logic unchanged.
It does its own hand-derived backprop with no engine at all, so agreement with the engine is
evidence, not an echo. The write-up does not show sigmoid_derivative, square_loss or
square_loss_derivative; they are the textbook ones. One copy for three readers: bench/circle.py
times it, and tests/nn/test_seed001.py and tests/nn/test_nn_datasets.py check the engine and
the dataset against it.
"""

# The reference keeps the write-up's spelling (plain zip, list concatenation) on purpose.
# ruff: noqa: B905, RUF005

import math
import random


def o(x, y):
    return 1.0 if x * x + y * y < 1 else 0.0


def make_dataset():
    sample_density = 10
    xs = [
        [-2.0 + 4 * x / sample_density, -2.0 + 4 * y / sample_density]
        for x in range(sample_density + 1)
        for y in range(sample_density + 1)
    ]
    return [(x, y, o(x, y)) for x, y in xs]


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def sigmoid_derivative(x):
    s = sigmoid(x)
    return s * (1 - s)


def square_loss(predict, target):
    return (predict - target) ** 2


def square_loss_derivative(predict, target):
    return 2 * (predict - target)


class Neuron:
    def __init__(self, num_inputs):
        self.weights = [random.random() - 0.5 for _ in range(num_inputs)]
        self.bias = 0.0

    def forward(self, inputs):
        self.inputs_cache = inputs
        # z = wx + b
        self.z_cache = sum([i * w for i, w in zip(inputs, self.weights)]) + self.bias
        return sigmoid(self.z_cache)

    def zero_grad(self):
        self.d_weights = [0.0 for w in self.weights]
        self.d_bias = 0.0

    def backward(self, d_a):
        d_loss_z = d_a * sigmoid_derivative(self.z_cache)
        self.d_bias += d_loss_z
        for i in range(len(self.inputs_cache)):
            self.d_weights[i] += d_loss_z * self.inputs_cache[i]
        return [d_loss_z * w for w in self.weights]

    def update_params(self, learning_rate):
        self.bias -= learning_rate * self.d_bias
        for i in range(len(self.weights)):
            self.weights[i] -= learning_rate * self.d_weights[i]


class MyNet:
    def __init__(self, num_inputs, hidden_shapes):
        layer_shapes = hidden_shapes + [1]
        input_shapes = [num_inputs] + hidden_shapes
        self.layers = [
            [Neuron(pre_layer_size) for _ in range(layer_size)]
            for layer_size, pre_layer_size in zip(layer_shapes, input_shapes)
        ]

    def forward(self, inputs):
        for layer in self.layers:
            inputs = [neuron.forward(inputs) for neuron in layer]
        # return the output of the last neuron
        return inputs[0]

    def zero_grad(self):
        for layer in self.layers:
            for neuron in layer:
                neuron.zero_grad()

    def backward(self, d_loss):
        d_as = [d_loss]
        for layer in reversed(self.layers):
            da_list = [neuron.backward(d_a) for neuron, d_a in zip(layer, d_as)]
            d_as = [sum(da) for da in zip(*da_list)]

    def update_params(self, learning_rate):
        for layer in self.layers:
            for neuron in layer:
                neuron.update_params(learning_rate)


def one_step(net, dataset, learning_rate):
    net.zero_grad()
    loss = 0.0
    num_samples = len(dataset)
    for x, y, z in dataset:
        predict = net.forward([x, y])
        loss += square_loss(predict, z)
        net.backward(square_loss_derivative(predict, z) / num_samples)
    net.update_params(learning_rate)
    return loss / num_samples
