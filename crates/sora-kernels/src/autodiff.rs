//! The autodiff plumbing shared by the layer operations of an input `x`, a weight `w` and a bias
//! `b` ([`crate::linear`], [`crate::conv`]): the graph node keeps `x`, `w` and, where the
//! activation's derivative needs it, one more tensor (the output or the pre-activation), and its
//! backward pass registers the gradients of the inputs that are tracked.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend};

/// The backward pass of one `x`, `w`, `b` operation.
pub(crate) trait LayerBackward: Copy + std::fmt::Debug + Send + Sync + 'static {
    /// The gradients of `x`, `w` and `b` (those `wanted`) from the output's gradient `grad`.
    fn grads<B: Backend>(
        self,
        grad: FloatTensor<B>,
        x: FloatTensor<B>,
        w: FloatTensor<B>,
        saved: Option<FloatTensor<B>>,
        wanted: [bool; 3],
    ) -> [Option<FloatTensor<B>>; 3];
}

/// The graph node of a [`LayerBackward`] operation.
#[derive(Debug)]
struct Node<O>(O);

impl<B: Backend, O: LayerBackward> Backward<B, 3> for Node<O> {
    /// `x`, `w`, and the tensor the derivative needs, if any.
    type State = (FloatTensor<B>, FloatTensor<B>, Option<FloatTensor<B>>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, w, saved) = ops.state;
        let wanted = [node_x.is_some(), node_w.is_some(), node_b.is_some()];
        let [dx, dw, db] = self.0.grads::<B>(grad, x, w, saved, wanted);
        for (node, grad) in [(node_x, dx), (node_w, dw), (node_b, db)] {
            if let (Some(node), Some(grad)) = (node, grad) {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

/// Runs `forward(x, w, b, tracked)` on the inner backend and records it in the graph with `op`
/// as its backward pass. `forward` returns the output and, when `tracked`, the tensor the
/// backward pass needs besides `x` and `w`.
pub(crate) fn layer_op<B: Backend, C: CheckpointStrategy, O: LayerBackward>(
    op: O,
    x: FloatTensor<Autodiff<B, C>>,
    w: FloatTensor<Autodiff<B, C>>,
    b: FloatTensor<Autodiff<B, C>>,
    forward: impl FnOnce(
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        bool,
    ) -> (FloatTensor<B>, Option<FloatTensor<B>>),
) -> FloatTensor<Autodiff<B, C>> {
    match Node(op)
        .prepare::<C>([x.node(), w.node(), b.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (xp, wp) = (x.primitive().clone(), w.primitive().clone());
            let (out, saved) = forward(xp.clone(), wp.clone(), b.into_primitive(), true);
            prep.finish((xp, wp, saved), out)
        }
        OpsKind::UnTracked(prep) => prep.finish(
            forward(
                x.into_primitive(),
                w.into_primitive(),
                b.into_primitive(),
                false,
            )
            .0,
        ),
    }
}
