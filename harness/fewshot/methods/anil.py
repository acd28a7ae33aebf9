"""ANIL, "almost no inner loop" (Raghu, Raghu, Bengio & Vinyals, ICLR 2020).

MAML with the inner loop restricted to the linear head (weights W, bias b). Each
task's images (support and queries together) pass through the backbone once; then

    (W, b)_{k+1} = (W, b)_k - inner_lr * grad CE(W_k f(support) + b_k, support_labels)

for ``inner_steps`` steps, and the query loss at the adapted head is backpropagated
through the inner loop (second order; cheap, as the head is linear) into the head's
initialisation and the backbone. At test time the features are computed once per
episode and only the head adapts (``test_inner_steps``). BatchNorm uses batch
statistics, over support and queries together (see ``_gradient_meta``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.fewshot.methods import register
from harness.fewshot.methods._base import FewShotMethod
from harness.fewshot.methods._gradient_meta import add_head_and_inner_loop, batch_statistics, inner_loop, split_task


@register("anil", version="1")
class ANIL(FewShotMethod):
    adapts_at_test = True
    fixed_ways = True

    def __init__(self, backbone, config, num_train_classes):
        super().__init__(backbone, config, num_train_classes)
        add_head_and_inner_loop(self, backbone, config)

    def adapt_head(self, features, labels, steps, create_graph):
        def support_loss(head):
            return F.cross_entropy(F.linear(features, head["weight"], head["bias"]), labels)

        return inner_loop(support_loss, dict(self.head.named_parameters()), steps, self.inner_lr, create_graph)

    def task_loss(self, images, classes, shots):
        ways = len(classes)
        support, support_labels, query, query_labels = split_task(self.backbone(images), ways, shots)
        head = self.adapt_head(support, support_labels, self.inner_steps, create_graph=True)
        logits = F.linear(query, head["weight"], head["bias"])
        return self.loss(logits, query_labels), (logits.argmax(1) == query_labels).float().mean()

    def adapt_and_score(self, support, support_labels, query, ways):
        assert ways == self.head.out_features, "the head was built for config['ways'] classes"
        with torch.no_grad(), batch_statistics(self):
            features = self.backbone(torch.cat([support, query]))
        with torch.enable_grad():
            head = self.adapt_head(features[: len(support)], support_labels, self.test_inner_steps, False)
        return F.linear(features[len(support):], head["weight"], head["bias"]).detach()
