"""Recommendation and model routes: parse, call the service, answer (docs/contract.md shapes)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from interaction_recommender.deps import SettingsDep, from_state, require_admin
from interaction_recommender.errors import ServiceUnavailable, Unprocessable
from interaction_recommender.model.bundle import BundleError
from interaction_recommender.model.context import parse_context
from interaction_recommender.model.engine import EngineSettings
from interaction_recommender.model.store import StoreError
from interaction_recommender.recs.registry import ModelRegistry
from interaction_recommender.recs.schemas import (
    ModelInfoResponse,
    ModelsResponse,
    ModelVersionSummary,
    RecommendationResponse,
    ReloadResponse,
    RollbackRequest,
    RollbackResponse,
    recommendation_body,
)
from interaction_recommender.recs.service import RecommendationService
from interaction_recommender.wire import utc_now

__all__ = ["router"]

router = APIRouter(tags=["recommendations"])


Recommendations = Annotated[RecommendationService, Depends(from_state("recommendations"))]
Registry = Annotated[ModelRegistry, Depends(from_state("registry"))]


@router.get(
    "/recommend/{user_id}",
    summary="Recommended movies for a user, best first, each with reasons",
    description="k is clamped to RECOMMEND_MAX_K; an unknown context (or detail without a "
    "movie) gets the home policy; an unknown user gets popular/trending movies.",
    response_model=RecommendationResponse,
    response_class=Response,
)
async def get_recommendations(
    user_id: UUID,
    recommendations: Recommendations,
    k: int = Query(default=20, ge=1, description="How many; values above the maximum are clamped."),
    context: str = Query(default="home", max_length=200),
    movie_id: UUID | None = Query(default=None, alias="movieId", description="For `detail`."),
    retrain: bool = Query(default=False, description="Accepted and ignored (training is offline)."),
) -> Response:
    try:
        parsed = parse_context(context, movie_id)
    except ValueError:
        raise Unprocessable(
            "context similar:/detail: needs a movie UUID",
            details=[{"field": "query.context", "message": "not a UUID", "type": "uuid_parsing"}],
        ) from None
    answer = await recommendations.recommend(user_id, parsed, k)
    body = recommendation_body(
        user_id=user_id,
        model_version=answer.model_version,
        cached=answer.cached,
        items_json=answer.items_json,
        generated_at=answer.generated_at,
        context=context,
        recommendation_id=answer.recommendation_id,
        policy=answer.policy,
    )
    return Response(body, media_type="application/json")


@router.get(
    "/model/info",
    summary="The model this process serves, and how it was trained",
    response_model_exclude_unset=True,
)
async def model_info(registry: Registry, settings: SettingsDep) -> ModelInfoResponse:
    loaded = registry.current
    if loaded is None:
        return ModelInfoResponse(
            status="fallback",
            version=registry.serving().model.version,
            path=str(registry.path),
            loaded_at=None,
            fallback_policy="popularity: distinct users per movie over the last 30 days",
            last_error=registry.last_error,
        )
    manifest = loaded.manifest
    return ModelInfoResponse(
        status="loaded",
        version=loaded.model.version,
        path=str(registry.path),
        loaded_at=loaded.loaded_at,
        trained_at=manifest.get("trainedAt"),
        data_window=manifest.get("dataWindow"),
        counts=manifest.get("counts"),
        feature_schema=manifest.get("featureSchema"),
        components=manifest.get("components"),
        params=manifest.get("params"),
        offline_metrics=manifest.get("offlineMetrics"),
        calibration={
            **manifest.get("calibration", {"lambda": loaded.model.calibration_lambda}),
            "serving": EngineSettings.from_settings(settings).calibration_for(loaded.model),
        },
        sha256=manifest.get("sha256"),
        signed_by=(manifest.get("signature") or {}).get("keyId"),
        names={name: m.model.version for name, m in registry.loaded.items()},
        fallback_policy="popularity and trending from the model when Redis or the database "
        "is slow or down",
        last_error=registry.last_error,
    )


async def _reload_guard(request: Request, settings: SettingsDep) -> None:
    """ADMIN_TOKEN when it is set; open otherwise (the route takes no path from the caller)."""
    if settings.admin_token is not None:
        await require_admin(request, settings)


@router.post(
    "/model/reload",
    dependencies=[Depends(_reload_guard)],
    summary="Import MODEL_PATH when it is new and serve what the store's names point at, now "
    "(every process also polls)",
    responses={422: {"description": "The bundle was refused; the current model keeps serving."}},
)
async def reload_model(registry: Registry) -> ReloadResponse:
    try:
        result = await registry.reload()
    except BundleError as exc:
        raise Unprocessable(f"The model was refused: {exc}") from None
    return ReloadResponse(
        status=result.status,
        previous_version=result.previous_version,
        new_version=result.new_version,
        reloaded_at=utc_now(),
        propagates_within_s=registry.poll_s,
    )


@router.post(
    "/model/rollback",
    dependencies=[Depends(_reload_guard)],
    summary="Point a model name back at its previous version (or a kept one), now",
    responses={422: {"description": "Nothing to roll back to, or the target was refused."}},
)
async def rollback_model(
    registry: Registry, request: RollbackRequest | None = None
) -> RollbackResponse:
    request = request or RollbackRequest()
    try:
        store = await registry.store()
        previous, version = await store.rollback(request.name, request.version)
        await registry.reload()
    except (BundleError, StoreError) as exc:
        raise Unprocessable(f"The rollback was refused: {exc}") from None
    return RollbackResponse(
        status="rolledBack",
        name=request.name,
        previous_version=previous,
        new_version=version,
        reloaded_at=utc_now(),
        propagates_within_s=registry.poll_s,
    )


@router.get(
    "/models",
    dependencies=[Depends(_reload_guard)],
    summary="The model store: names and every kept version with its metrics (newest first)",
)
async def list_models(
    registry: Registry, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> ModelsResponse:
    try:
        store = await registry.store()
    except BundleError as exc:  # no signing key yet: nothing can be stored
        raise ServiceUnavailable(str(exc)) from None
    names = await store.names()
    versions = await store.versions(limit)
    return ModelsResponse(
        names={name: named.version for name, named in names.items()},
        versions=[
            ModelVersionSummary(
                version=v.version,
                created_at=v.created_at,
                source=v.source,
                trained_for=v.trained_for,
                size_bytes=v.size_bytes,
                trained_at=v.manifest.get("trainedAt"),
                data_window=v.manifest.get("dataWindow"),
                counts=v.manifest.get("counts"),
                offline_metrics=v.manifest.get("offlineMetrics"),
                params=v.manifest.get("params"),
            )
            for v in versions
        ],
    )
